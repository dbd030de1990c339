"""The prepare stage on the real ESCI sample and on hand-made files with bad rows."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pandas as pd

from tests.conftest import files_under, run_stage


def test_real_esci_sample_matches_its_readme(project, esci_dir: Path) -> None:
    root = project()
    result = run_stage("prepare", root)
    assert result.returncode == 0, result.stderr
    report = json.loads((root / "metrics" / "prepare.json").read_text())
    assert (report["queries"], report["judgments"], report["listings"]) == (150, 6678, 6764)
    # README: ratings 100 -> 3,389, 10 -> 1,898, 1 -> 305, 0 -> 1,086
    assert report["labels"] == {
        "relevant": 3389,
        "partially_relevant": 1898 + 305,
        "irrelevant": 1086,
    }
    assert report["quarantined"] == 0
    judgments = pd.read_parquet(root / "data/prepared/judgments.parquet")
    assert set(judgments["guideline_version"]) == {"2020.2"}
    assert not judgments.duplicated(["query_id", "listing_id"]).any()


def _write_fixture(folder: Path) -> dict[str, str]:
    """Tiny ESCI-shaped files with one bad row of each kind; returns their sha256s."""
    folder.mkdir(parents=True)
    # Every key the esci_us config maps is in some record (a key in none is a config error).
    optional = dict.fromkeys(
        ["description", "bullet_points", "brand", "color", "image", "price", "rating", "is_book"]
    )
    products = [
        {
            "asin": "A1",
            "title": "Red wool scarf",
            "category": ["Clothing"],
            "rating_count": 5,
            **optional,
        },
        {"asin": "A2", "title": "Steel bolt", "category": [], "rating_count": 1},
        {"asin": "A3", "title": "   ", "category": []},  # empty title
    ]
    with gzip.open(folder / "ubi_ecommerce_products.json.gz", "wt") as f:
        f.write("\n".join(json.dumps(p) for p in products) + "\n")
    queries = {"querySetQueries": [{"queryText": "red scarf"}, {"queryText": "bolt"}]}
    (folder / "esci_us_queryset.json").write_text(json.dumps(queries))
    judgments = {
        "judgmentRatings": [
            {
                "query": "red scarf",
                "ratings": [
                    {"docId": "A1", "rating": "100.000"},
                    {"docId": "A2", "rating": "0.000"},
                    {"docId": "A1", "rating": "10.000"},  # duplicate pair
                    {"docId": "A9", "rating": "100.000"},  # missing listing
                    {"docId": "A3", "rating": "1.000"},  # listing with an empty title (quarantined)
                ],
            },
            {
                "query": "bolt",
                "ratings": [
                    {"docId": "A2", "rating": "100.000"},
                    {"docId": "A1", "rating": "55.000"},  # unknown label
                ],
            },
        ]
    }
    (folder / "esci_us_judgments.json").write_text(json.dumps(judgments))
    return {
        role: hashlib.sha256((folder / name).read_bytes()).hexdigest()
        for role, name in [
            ("judgments", "esci_us_judgments.json"),
            ("queries", "esci_us_queryset.json"),
            ("listings", "ubi_ecommerce_products.json.gz"),
        ]
    }


def _fixture_edits(folder: Path, shas: dict[str, str], policy: str) -> dict:
    edits: dict = {"data.mirror_dirs": [str(folder)], "data.on_bad_rows": policy}
    edits.update({f"data.files.{role}.sha256": sha for role, sha in shas.items()})
    return edits


def test_bad_rows_are_quarantined_with_reasons(project, tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    root = project(edits=_fixture_edits(folder, _write_fixture(folder), "quarantine"))
    result = run_stage("prepare", root)
    assert result.returncode == 0, result.stderr
    quarantine = pd.read_parquet(root / "data/prepared/quarantine.parquet")
    reasons = sorted(r.split(":")[0] for r in quarantine["reason"])
    assert reasons == [
        "duplicate pair",
        "empty title",
        "missing listing",
        "missing listing",
        "unknown label",
    ]
    assert set(quarantine["file"]) == {"ubi_ecommerce_products.json.gz", "esci_us_judgments.json"}
    report = json.loads((root / "metrics/prepare.json").read_text())
    assert report["judgments"] == 3 and report["quarantined"] == 5
    assert report["quarantine_reasons"]["missing listing"] == 2


def test_bad_row_is_an_error_naming_file_and_row(project, tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    root = project(edits=_fixture_edits(folder, _write_fixture(folder), "error"))
    result = run_stage("prepare", root)
    assert result.returncode == 2
    assert "ubi_ecommerce_products.json.gz: line 3: empty title" in result.stderr
    assert files_under(root, "data", "metrics") == []


def test_checksum_mismatch_is_an_error(project, tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    shas = _write_fixture(folder)
    shas["queries"] = "0" * 64
    root = project(edits=_fixture_edits(folder, shas, "quarantine"))
    result = run_stage("prepare", root)
    assert result.returncode == 2
    assert (
        "esci_us_queryset.json (" in result.stderr and "does not match the pinned" in result.stderr
    )
    assert files_under(root, "data", "metrics") == []


def test_missing_files_without_download_is_an_error(project, tmp_path: Path) -> None:
    root = project(edits={"data.mirror_dirs": [str(tmp_path / "nowhere")]})
    result = run_stage("prepare", root)
    assert result.returncode == 2
    assert (
        "not found in any mirror folder" in result.stderr
        and "data.download: false" in result.stderr
    )


def test_download_when_no_mirror_has_the_files(project, tmp_path: Path) -> None:
    """A real HTTP server on localhost stands in for the pinned public addresses."""
    import functools
    import http.server
    import threading

    served = tmp_path / "served"
    shas = _write_fixture(served)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        mirror = tmp_path / "mirror"
        edits = _fixture_edits(mirror, shas, "quarantine")
        edits["data.download"] = True
        for role, name in [
            ("judgments", "esci_us_judgments.json"),
            ("queries", "esci_us_queryset.json"),
            ("listings", "ubi_ecommerce_products.json.gz"),
        ]:
            edits[f"data.files.{role}.url"] = f"{base}/{name}"
        root = project(edits=edits)
        result = run_stage("prepare", root)
        assert result.returncode == 0, result.stderr
        assert sorted(p.name for p in mirror.iterdir()) == [
            "esci_us_judgments.json",
            "esci_us_queryset.json",
            "ubi_ecommerce_products.json.gz",
        ]
        # A download that does not match its pinned checksum is refused.
        (mirror / "esci_us_queryset.json").unlink()
        (served / "esci_us_queryset.json").write_text('{"querySetQueries": []}')
        result = run_stage("prepare", project(edits=edits))
        assert result.returncode == 2 and "does not match the pinned" in result.stderr
        assert not (mirror / "esci_us_queryset.json").exists()  # the bad download is not kept
    finally:
        server.shutdown()


def test_a_queued_experiment_finds_the_mirror_beside_its_project(tmp_path: Path) -> None:
    """DVC runs a queued experiment in a copy under <project>/.dvc/tmp/exps/; a relative
    mirror beside the project (../shared/...) is looked up from the project too."""
    from relevance_kit.data.sources import mirror_folders

    copy = tmp_path / "project" / ".dvc" / "tmp" / "exps" / "tmpab12"
    folders = mirror_folders(["../shared/ds", "data/raw", "/abs/ds"], cwd=copy)
    assert folders == [
        Path("../shared/ds"), tmp_path / "project" / "../shared/ds",
        Path("data/raw"), tmp_path / "project" / "data/raw",
        Path("/abs/ds"),
    ]  # fmt: skip
    assert mirror_folders(["../shared/ds"], cwd=tmp_path / "project") == [Path("../shared/ds")]
