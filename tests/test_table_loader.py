"""The table loader: each file shape on small hand-made files (written in tmp_path), every
config mistake, and every malformed input a new user tried on the old ESCI loader."""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from relevance_kit.config import RelevanceConfig, compose, validate
from relevance_kit.data import fields as F
from relevance_kit.data.prepare import Prepared, prepare_dataset
from relevance_kit.errors import ConfigError, DataError
from tests.conftest import REPO, files_under, run_stage, write_project

CONF = REPO / "conf"
LOADER = {"_target_": "relevance_kit.data.table.load_tables"}
ESCI_RATINGS = {"100": "E", "10": "S", "1": "C", "0": "I"}
GRADE_BINS = {
    "range": [1.0, 3.0],
    "bins": [
        {"min": 2.5, "source": "perfect_match"},
        {"min": 1.75, "source": "partially_relevant"},
        {"min": 1.0, "source": "irrelevant"},
    ],
    "disagreed_if_fractional": True,
    "panel_size": 3,
}


# What conf/data writes for each key of a table that these tests do not set (each table
# gives every key; a table config here gives only what it is about).
TABLE = {
    "compression": "infer", "member": None, "encoding": "utf-8", "records": None, "explode": None,
    "list_delimiters": {}, "attributes_format": "pairs", "attribute_flags": {},
}  # fmt: skip


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    return yaml.safe_load(compose(["experiment=ci_tiny"], CONF))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def data_section(
    folder: Path, files: dict[str, str], tables: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """A `data:` config for files in `folder` (role -> file name), sha256s computed; the
    group option's name is one of conf/data's (names are checked against its files)."""
    section = {
        "name": "esci_us",
        "loader": LOADER,
        "mirror_dirs": [str(folder)],
        "download": False,
        "files": {
            role: {"filename": name, "sha256": sha(folder / name), "url": None}
            for role, name in files.items()
        },
        "tables": {"queries": None} | {role: TABLE | spec for role, spec in tables.items()},
        "source_scheme": "esci",
        "rating_to_source": ESCI_RATINGS,
        "rating_bins": None,
        "annotator_id": "test_raters",
        "judged_at": "2024-01-01",
        "on_bad_rows": "quarantine",
    }
    section.update(extra)
    return section


def config(base: dict[str, Any], data: dict[str, Any]) -> RelevanceConfig:
    raw = copy.deepcopy(base)
    raw["data"] = data
    return validate(raw, CONF)


def prepare(base: dict[str, Any], data: dict[str, Any]) -> Prepared:
    return prepare_dataset(config(base, data))


def reasons(prepared: Prepared) -> list[str]:
    return sorted(prepared.quarantine["reason"])


# --- the three shapes --------------------------------------------------------------------


HOMEDEPOT_ROWS = [  # id, product_uid, product_title, search_term, relevance
    (1, 100001, "Simpson Strong-Tie 12-Gauge Angle", "angle bracket", "3"),
    (2, 100001, "Simpson Strong-Tie 12-Gauge Angle", "l bracket", "2.5"),
    (3, 100002, "BEHR Premium Textured DeckOver 1-gal.", "deck over", "2.33"),
    (4, 100002, "BEHR Premium Textured DeckOver 1 gal.", "deckover", "1.67"),  # title differs
    (5, 100003, "Pavé 30° Galvanized Nails", "T Towels Kitchen", "1"),  # latin-1 bytes
    (6, 100004, "Kitchen Towel Bar", "t towels kitchen", "2"),  # same query, other case
    (7, 100005, "Delta Faucet", "4 x 6", "1.75"),
]


def write_homedepot_like(folder: Path) -> str:
    """A zipped latin-1 CSV in Home Depot's denormalised shape with averaged grades."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(
        HOMEDEPOT_ROWS, columns=["id", "product_uid", "product_title", "search_term", "relevance"]
    )
    with zipfile.ZipFile(folder / "train.csv.zip", "w") as archive:
        archive.writestr("train.csv", frame.to_csv(index=False).encode("latin-1"))
    return "train.csv.zip"


def denormalised_tables(encoding: str = "latin-1") -> dict[str, Any]:
    common = {"file": "pairs", "format": "csv", "member": "train.csv", "encoding": encoding}
    return {
        "listings": {**common, "columns": {"listing_id": "product_uid", "title": "product_title"}},
        "judgments": {
            **common,
            "columns": {
                "query_text": "search_term",
                "listing_id": "product_uid",
                "rating": "relevance",
            },
        },
    }


def homedepot_like(folder: Path, **extra: Any) -> dict[str, Any]:
    files = {"pairs": write_homedepot_like(folder)}
    extra = {
        "name": "homedepot",
        "source_scheme": "homedepot",
        "rating_to_source": None,
        "rating_bins": GRADE_BINS,
    } | extra
    return data_section(folder, files, denormalised_tables(), **extra)


def test_denormalised_zipped_latin1_csv_with_averaged_grades(base, tmp_path: Path) -> None:
    prepared = prepare(base, homedepot_like(tmp_path / "raw"))
    j = prepared.judgments
    assert prepared.quarantine.empty
    # Bins: >= 2.5 relevant, [1.75, 2.5) partially relevant, below irrelevant.
    assert j["grade"].tolist() == [3.0, 2.5, 2.33, 1.67, 1.0, 2.0, 1.75]
    assert j["label"].tolist() == [
        "relevant", "relevant", "partially_relevant", "irrelevant", "irrelevant", "partially_relevant", "partially_relevant",
    ]  # fmt: skip
    assert j["source_label"].tolist()[:2] == ["perfect_match", "perfect_match"]
    assert j["raters_disagreed"].tolist() == [False, True, True, True, False, False, True]
    assert prepared.report["raters_disagreed_share"] == round(4 / 7, 4)
    # Listings from the same rows: one per product, the first title kept, the conflict reported.
    listings = prepared.listings.set_index("listing_id")
    assert (
        len(listings) == 5
        and listings.loc["100002", "title"] == "BEHR Premium Textured DeckOver 1-gal."
    )
    assert listings.loc["100003", "title"] == "Pavé 30° Galvanized Nails"  # latin-1 decoded
    assert prepared.report["listings_with_conflicting_fields"] == 1
    assert prepared.report["conflicting_listing_ids"] == ["100002"]
    # Queries derived from the text: the two case variants are one query (first text kept).
    assert len(prepared.queries) == 6 and prepared.report["pairs"] == 7
    towels = prepared.queries[prepared.queries["text"].str.lower() == "t towels kitchen"]
    assert towels["text"].tolist() == ["T Towels Kitchen"]
    assert j["query_id"].isin(towels["query_id"]).sum() == 2
    assert (
        prepared.report["shape"] == "denormalised"
        and prepared.report["guideline_version"] == "2020.2"
    )


def test_wrong_encoding_names_file_line_and_the_setting(base, tmp_path: Path) -> None:
    data = homedepot_like(tmp_path / "raw")
    for table in filter(None, data["tables"].values()):  # (no queries table)
        table["encoding"] = "utf-8"
    with pytest.raises(
        DataError,
        match=r"train.csv.zip/train.csv: line 6: byte\(s\) .* are not valid utf-8; set the table's `encoding:`",
    ):
        prepare(base, data)


def write_parquet_trio(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    listings = pa.table({
        "sku": ["S1", "S2", "S3"],
        "name": ["Oak dining table", "Pine bookshelf", "Oak chair"],
        "body": ["Solid oak.", None, "A chair."],
        "path": ["Home > Furniture > Tables", "Home > Furniture", None],
        "specs": ["material:oak|seats:6", "", "material:oak"],
        "images": [["https://x/1.jpg", "https://x/2.jpg"], [], None],
        "price": [499.0, 89.5, None],
        "reviews": [120, 0, 7],
    })  # fmt: skip
    pq.write_table(listings, folder / "listings.parquet")
    pq.write_table(
        pa.table({"qid": ["q1", "q2"], "query": ["oak table", "Bookshelf"]}),
        folder / "queries.parquet",
    )
    judgments = pa.table(
        {
            "qid": ["q1", "q1", "q2", "q2"],
            "sku": ["S1", "S3", "S2", "S1"],
            "grade": [100, 1, 100, 0],
        }
    )
    pq.write_table(judgments, folder / "judgments.parquet")
    return {
        "listings": "listings.parquet",
        "queries": "queries.parquet",
        "judgments": "judgments.parquet",
    }


def parquet_trio_tables() -> dict[str, Any]:
    listing_columns = {
        "listing_id": "sku", "title": "name", "description": "body", "category": "path",
        "attributes": "specs", "image_urls": "images", "price": "price", "rating_count": "reviews",
    }  # fmt: skip
    return {
        "listings": {
            "file": "listings",
            "format": "parquet",
            "columns": listing_columns,
            "list_delimiters": {"category": ">"},
        },
        "queries": {
            "file": "queries",
            "format": "parquet",
            "columns": {"query_id": "qid", "text": "query"},
        },
        "judgments": {
            "file": "judgments",
            "format": "parquet",
            "columns": {"query_id": "qid", "listing_id": "sku", "rating": "grade"},
        },
    }


def test_parquet_trio_with_given_query_ids(base, tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    prepared = prepare(
        base, data_section(folder, write_parquet_trio(folder), parquet_trio_tables())
    )
    listing = prepared.listings.set_index("listing_id").loc["S1"]
    assert listing["category"] == ["Home", "Furniture", "Tables"]
    assert listing["attributes"] == {"material": "oak", "seats": "6"}
    assert (
        listing["image_urls"] == ["https://x/1.jpg", "https://x/2.jpg"]
        and listing["rating_count"] == 120
    )
    assert prepared.queries.to_dict("records") == [
        {"query_id": "q1", "text": "oak table"},
        {"query_id": "q2", "text": "Bookshelf"},
    ]
    assert prepared.judgments["label"].tolist() == [
        "relevant",
        "partially_relevant",
        "relevant",
        "irrelevant",
    ]
    assert prepared.judgments["grade"].isna().all() and prepared.report["shape"] == "three tables"


def write_jsonl_annotators(folder: Path, n_queries: int = 8) -> dict[str, str]:
    """CSV listings and queries, gzipped JSON-lines judgments: one row per annotator, two
    annotators per pair, who disagree on every third pair."""
    folder.mkdir(parents=True, exist_ok=True)
    listing_rows = [
        {"id": f"L{i}", "title": f"Product {i} steel hammer", "cat": "Tools/Hand tools"}
        for i in range(12)
    ]
    pd.DataFrame(listing_rows).to_csv(folder / "listings.csv", index=False)
    pd.DataFrame({"q": [f"hammer {i}" for i in range(n_queries)]}).to_csv(
        folder / "queries.csv", index=False
    )
    lines = []
    for qi in range(n_queries):
        for li in range(4):
            first = ("Exact", "Substitute", "Irrelevant")[(qi + li) % 3]
            second = first if (qi + li) % 3 else "Complement"
            for rater, label in (("ann_a", first), ("ann_b", second)):
                lines.append(
                    json.dumps(
                        {
                            "query": f"hammer {qi}",
                            "product": f"L{(qi + li) % 12}",
                            "label": label,
                            "rater": rater,
                        }
                    )
                )
    with gzip.open(folder / "judgments.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return {"listings": "listings.csv", "queries": "queries.csv", "judgments": "judgments.jsonl.gz"}


def jsonl_tables() -> dict[str, Any]:
    return {
        "listings": {"file": "listings", "format": "csv", "columns": {"listing_id": "id", "title": "title", "category": "cat"},
                     "list_delimiters": {"category": "/"}},
        "queries": {"file": "queries", "format": "csv", "columns": {"text": "q"}},
        "judgments": {"file": "judgments", "format": "jsonl",
                      "columns": {"query_text": "query", "listing_id": "product", "rating": "label", "annotator_id": "rater"}},
    }  # fmt: skip


LETTERS = {"Exact": "E", "Substitute": "S", "Complement": "C", "Irrelevant": "I"}


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        ("material:oak| seats : 6", "pairs", {"material": "oak", "seats": "6"}),
        ('{"material": "oak", "seats": 6}', "json", {"material": "oak", "seats": "6"}),
        ({"material": "oak"}, "pairs", {"material": "oak"}),
        ([("finish", "oiled")], "pairs", {"finish": "oiled"}),  # a Parquet map column
        (None, "json", {}),
    ],
)
def test_attribute_forms(value: Any, fmt: str, expected: dict[str, str]) -> None:
    assert F.attributes(value, "attributes", fmt) == expected


def test_attribute_text_that_is_not_key_value_is_a_field_error() -> None:
    with pytest.raises(F.FieldError, match=r"attributes item 'oak' is not key:value"):
        F.attributes("material:oak|oak", "attributes", "pairs")


def test_jsonl_one_row_per_annotator_reaches_golden_agreement(tmp_path: Path) -> None:
    """prepare -> sample -> golden as DVC runs them: two annotators per pair give kappa and alpha."""
    folder = tmp_path / "raw"
    data = data_section(
        folder, write_jsonl_annotators(folder), jsonl_tables(), rating_to_source=LETTERS
    )
    root = write_project(tmp_path / "project", ["experiment=ci_tiny"], {
        "data": data, "sampling.max_queries": None, "sampling.splits": {"golden": 3, "annotate": 3, "teacher": 1, "unlabeled": "rest"},
    })  # fmt: skip
    for stage in ("prepare", "sample", "golden"):
        done = run_stage(stage, root)
        assert done.returncode == 0, f"{stage}: {done.stderr[-2000:]}"
    report = json.loads((root / "metrics/prepare.json").read_text())
    assert (report["judgments"], report["pairs"], report["annotators"]) == (64, 32, 2)
    agreement = json.loads((root / "metrics/agreement.json").read_text())["agreement"]
    assert (
        agreement["n_annotators"] == 2
        and agreement["pairs_with_2plus"] == agreement["n_pairs"] == 12
    )
    assert (
        agreement["cohen_kappa"] is not None and agreement["krippendorff_alpha_nominal"] is not None
    )
    assert 0 < agreement["disagreement_rate"] < 1
    golden = pd.read_parquet(root / "data/splits/golden_pool.parquet")
    assert not golden.duplicated(["query_id", "listing_id"]).any()  # one pool row per pair


# --- config mistakes ---------------------------------------------------------------------


def _edit(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    *parents, last = dotted.split(".")
    node = data
    for part in parents:
        node = node[part]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "tables.listings.colums",
            {},
            r"data.tables.listings.colums: unknown key; allowed keys here: file, format",
        ),
        (
            "tables.listings.format",
            "xlsx",
            r"data.tables.listings.format = 'xlsx': Input should be 'csv', 'tsv', 'parquet'",
        ),
        (
            "tables.listings.columns.titel",
            "product_title",
            r"listings.columns maps unknown field\(s\) \['titel'\]",
        ),
        ("tables.listings.columns.title", _DELETE, r"listings.columns must map \['title'\]"),
        (
            "tables.judgments.columns.query_text",
            _DELETE,
            r"judgments.columns must map query_id or query_text",
        ),
        (
            "tables.judgments.file",
            "ratings",
            r"tables.judgments.file = 'ratings' is not one of files: \['pairs'\]",
        ),
        ("tables.listings.records", "items", r"records is for format 'json'"),
        ("tables.listings.list_delimiters", {"title": ","}, r"list_delimiters names \['title'\]"),
        (
            "tables.listings.encoding",
            "latin-9x",
            r"data.tables.listings.encoding: unknown encoding 'latin-9x'",
        ),
        (
            "rating_to_source",
            ESCI_RATINGS,
            r"give exactly one of rating_to_source .* and rating_bins",
        ),
        ("rating_bins", None, r"give exactly one of rating_to_source .* and rating_bins"),
        (
            "rating_bins.bins",
            [{"min": 1.0, "source": "irrelevant"}, {"min": 2.5, "source": "perfect_match"}],
            r"highest first",
        ),
        (
            "rating_bins.bins",
            [{"min": 2.5, "source": "perfect_match"}],
            r"the last min must be 1.0",
        ),
        (
            "rating_bins.bins",
            [{"min": 1.0, "source": "great"}],
            r"taxonomy.source_maps.homedepot lacks source label\(s\) \['great'\]",
        ),
        ("loader", {"target": "x"}, r"data.loader: \{'target': 'x'\} needs `_target_`"),
        (
            "files.pairs.sha256",
            "abc",
            r"data.files.pairs.sha256 = 'abc': String should match pattern",
        ),
    ],
)
def test_config_mistakes_name_the_key(
    base, tmp_path: Path, key: str, value: Any, message: str
) -> None:
    data = _edit(homedepot_like(tmp_path / "raw"), key, value)
    with pytest.raises(ConfigError, match=message):
        config(base, data)


def test_loader_that_cannot_be_imported_is_a_config_error(base, tmp_path: Path) -> None:
    data = _edit(
        homedepot_like(tmp_path / "raw"), "loader._target_", "relevance_kit.data.nowhere.load"
    )
    with pytest.raises(ConfigError, match=r"data.loader \(relevance_kit.data.nowhere.load\)"):
        prepare(base, data)


def test_missing_column_names_file_column_and_columns_found(base, tmp_path: Path) -> None:
    data = _edit(homedepot_like(tmp_path / "raw"), "tables.listings.columns.title", "title")
    with pytest.raises(DataError, match=(
        r"train.csv.zip/train.csv: column 'title' \(data.tables.listings.columns.title\) not found; "
        r"columns found: \['id', 'product_uid', 'product_title', 'search_term', 'relevance'\]"
    )):  # fmt: skip
        prepare(base, data)


def test_wrong_records_path_is_a_clear_error(base, tmp_path: Path) -> None:
    data = write_esci_like(tmp_path / "raw", [GOOD])
    data["tables"]["queries"]["records"] = "querySet"
    with pytest.raises(
        DataError, match=r"queries.json: expected a JSON document with a list under 'querySet'"
    ):
        prepare(base, data)


def test_zip_with_several_members_needs_member(base, tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    data = homedepot_like(folder)
    with zipfile.ZipFile(folder / "train.csv.zip", "a") as archive:
        archive.writestr("notes.txt", "hello")
    data["files"]["pairs"]["sha256"] = sha(folder / "train.csv.zip")
    for table in filter(None, data["tables"].values()):
        table["member"] = None
    with pytest.raises(
        DataError,
        match=r"the zip holds \['train.csv', 'notes.txt'\]; name the one to read with `member:`",
    ):
        prepare(base, data)


# --- malformed inputs on ESCI's shapes ---------------------------------------------------

ESCI_FILES = {
    "judgments": "judgments.json",
    "queries": "queries.json",
    "listings": "products.json.gz",
}


def esci_tables() -> dict[str, Any]:
    return yaml.safe_load((CONF / "data" / "esci_us.yaml").read_text())["tables"]


def write_esci_like(folder: Path, products: list[Any], ratings: list[Any] | None = None, queries: list[str] | None = None,
                    raw_lines: list[bytes] = ()) -> dict[str, Any]:  # fmt: skip
    """ESCI-shaped files (products as JSON-lines, gzipped; `raw_lines` appended as bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    full = dict.fromkeys(
        [
            "description",
            "bullet_points",
            "category",
            "brand",
            "color",
            "image",
            "price",
            "rating",
            "rating_count",
            "is_book",
        ]
    )
    lines = [json.dumps(p if not isinstance(p, dict) else full | p).encode() for p in products]
    (folder / ESCI_FILES["listings"]).write_bytes(
        gzip.compress(b"\n".join([*lines, *raw_lines]) + b"\n")
    )
    texts = queries or ["red scarf"]
    (folder / ESCI_FILES["queries"]).write_text(
        json.dumps({"querySetQueries": [{"queryText": t} for t in texts]})
    )
    block = {
        "query": texts[0],
        "ratings": ratings if ratings is not None else [{"docId": "A1", "rating": "100.000"}],
    }
    (folder / ESCI_FILES["judgments"]).write_text(json.dumps({"judgmentRatings": [block]}))
    return data_section(folder, ESCI_FILES, esci_tables())


GOOD = {"asin": "A1", "title": "Red wool scarf", "category": ["Clothing"], "rating_count": 5}


def test_truncated_gzip_is_a_clear_error(base, tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    data = write_esci_like(folder, [GOOD] * 1 + [{**GOOD, "asin": f"B{i}"} for i in range(200)])
    path = folder / ESCI_FILES["listings"]
    path.write_bytes(path.read_bytes()[:-40])
    data["files"]["listings"]["sha256"] = sha(path)  # the checksum passes: the file is what it is
    with pytest.raises(DataError, match=r"products.json.gz: not a readable gzip file .*truncated"):
        prepare(base, data)


def test_file_that_is_not_gzip_is_a_clear_error(base, tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    data = write_esci_like(folder, [GOOD])
    path = folder / ESCI_FILES["listings"]
    path.write_text(json.dumps(GOOD) + "\n")
    data["files"]["listings"]["sha256"] = sha(path)
    with pytest.raises(
        DataError, match=r"products.json.gz: not a readable gzip file \(Not a gzipped file"
    ):
        prepare(base, data)


@pytest.mark.parametrize(
    ("bad_product", "reason"),
    [
        ([1, 2, 3], "not an object: a JSON list where a record was expected"),
        (
            {**GOOD, "asin": "A2", "title": 12345},
            "bad field: title is a int (12345), expected text",
        ),
        (
            {**GOOD, "asin": "A2", "rating_count": "many"},
            "bad field: rating_count 'many' is not a whole number >= 0",
        ),
        (
            {**GOOD, "asin": "A2", "bullet_points": [{"text": "warm"}]},
            "bad field: bullet_points item is a dict",
        ),
        (
            {**GOOD, "asin": "A2", "category": "Clothing", "price": "cheap"},
            "bad field: price 'cheap' is not a number",
        ),
    ],
)
def test_bad_listing_values_are_quarantined_with_reasons(
    base, tmp_path: Path, bad_product: Any, reason: str
) -> None:
    prepared = prepare(base, write_esci_like(tmp_path / "raw", [GOOD, bad_product]))
    assert len(prepared.quarantine) == 1 and prepared.quarantine["reason"][0].startswith(reason)
    assert (
        prepared.quarantine["row"][0] == "line 2"
        and prepared.quarantine["file"][0] == "products.json.gz"
    )
    assert prepared.listings["listing_id"].tolist() == ["A1"]


def test_bad_listing_value_under_error_policy_names_file_row_and_field(
    base, tmp_path: Path
) -> None:
    data = write_esci_like(tmp_path / "raw", [GOOD, {**GOOD, "asin": "A2", "title": 12345}])
    data["on_bad_rows"] = "error"
    with pytest.raises(
        DataError, match=r"products.json.gz: line 2: bad field: title is a int \(12345\)"
    ):
        prepare(base, data)


def test_bullet_points_as_a_list_of_texts_are_taken_as_is(base, tmp_path: Path) -> None:
    """A list of texts is a list field's other form, not a bad row; a list of objects is."""
    prepared = prepare(
        base, write_esci_like(tmp_path / "raw", [{**GOOD, "bullet_points": [" warm ", "wool", ""]}])
    )
    assert prepared.quarantine.empty
    assert prepared.listings["bullet_points"][0] == ["warm", "wool"]


def test_non_utf8_bytes_in_json_lines_are_a_bad_row(base, tmp_path: Path) -> None:
    latin = json.dumps({**GOOD, "asin": "A2", "title": "Pavé"}, ensure_ascii=False).encode(
        "latin-1"
    )
    prepared = prepare(base, write_esci_like(tmp_path / "raw", [GOOD], raw_lines=[latin]))
    assert reasons(prepared) == ["bad encoding: byte(s) b'\\xe9' are not valid utf-8"]


def test_non_utf8_bytes_in_a_json_document_are_a_clear_error(base, tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    data = write_esci_like(folder, [GOOD])
    path = folder / ESCI_FILES["queries"]
    path.write_bytes('{"querySetQueries": [\n{"queryText": "pavé"}]}'.encode("latin-1"))
    data["files"]["queries"]["sha256"] = sha(path)
    with pytest.raises(
        DataError, match=r"queries.json: line 2: byte\(s\) b'\\xe9' are not valid utf-8"
    ):
        prepare(base, data)


def test_bare_string_rating_entry_is_a_bad_row(base, tmp_path: Path) -> None:
    ratings = [{"docId": "A1", "rating": "100.000"}, "A1"]
    prepared = prepare(base, write_esci_like(tmp_path / "raw", [GOOD], ratings))
    assert reasons(prepared) == ["not an object: ratings entry 'A1' is a JSON str"]
    assert prepared.quarantine["row"][0] == "judgmentRatings[0].ratings[1]"
    assert len(prepared.judgments) == 1


def test_every_rating_unknown_is_no_valid_judgments(base, tmp_path: Path) -> None:
    ratings = [{"docId": "A1", "rating": "55"}, {"docId": "A1", "rating": "excellent"}]
    with pytest.raises(
        DataError,
        match=r"judgments.json: no valid judgments: all 2 judgment row\(s\) are bad \(\{'unknown label': 2\}\)",
    ):
        prepare(base, write_esci_like(tmp_path / "raw", [GOOD], ratings))


def test_case_variant_queries_are_one_query(base, tmp_path: Path) -> None:
    """ "T Towels Kitchen" beside "t towels kitchen" would share a query id: the second is
    quarantined as a duplicate, and judgments under either text belong to the one query."""
    products = [GOOD, {**GOOD, "asin": "A2", "title": "Kitchen towels"}]
    ratings = [{"docId": "A1", "rating": "0"}, {"docId": "A2", "rating": "100"}]
    prepared = prepare(
        base,
        write_esci_like(
            tmp_path / "raw", products, ratings, ["T Towels Kitchen", "t towels kitchen"]
        ),
    )
    assert prepared.queries["text"].tolist() == ["T Towels Kitchen"]
    assert reasons(prepared) == [
        "duplicate query: 't towels kitchen' has the id of 'T Towels Kitchen' (ids ignore case)"
    ]
    assert (
        prepared.judgments["query_id"].nunique() == 1
        and not prepared.queries["query_id"].duplicated().any()
    )


def test_malformed_input_in_the_stage_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    data = write_esci_like(folder, [GOOD])
    path = folder / ESCI_FILES["listings"]
    path.write_bytes(b"not gzip")
    data["files"]["listings"]["sha256"] = sha(path)
    root = write_project(tmp_path / "project", ["experiment=ci_tiny"], {"data": data})
    result = run_stage("prepare", root)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "products.json.gz: not a readable gzip file" in result.stderr
    assert files_under(root, "data", "metrics") == []


def test_readme_dataset_examples_validate(base) -> None:
    """Both shapes shown in README "Adding a dataset" are valid data configs as written."""
    readme = (REPO / "README.md").read_text()
    section = readme[
        readme.index("### Adding a dataset") : readme.index("### Guidelines and human annotation")
    ]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 2
    for block in blocks:
        data = yaml.safe_load(block.replace("<64 hex digits>", "a" * 64))
        raw = copy.deepcopy(base)
        raw["data"] = data | {
            "name": "esci_us"
        }  # group names are checked against conf/data's files
        sources = data.get("rating_to_source") or {
            b["source"]: b["source"] for b in data["rating_bins"]["bins"]
        }
        raw["taxonomy"]["source_maps"][data["source_scheme"]] = dict.fromkeys(
            sources.values(), "relevant"
        )
        assert validate(raw, CONF).data.source_scheme == data["source_scheme"]
