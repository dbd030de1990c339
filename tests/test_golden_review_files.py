"""Review files: CSV and Label Studio, out to annotators and back as judgments."""

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from relevance_kit.errors import DataError
from relevance_kit.golden import (
    export_label_studio_tasks,
    export_review_csv,
    import_label_studio_export,
    import_review_csv,
    label_studio_config,
)
from relevance_kit.io import write_parquet
from relevance_kit.schemas import JUDGMENT_SCHEMA

FIXTURES = Path(__file__).parent / "fixtures" / "golden"
LABELS = ["relevant", "partially_relevant", "irrelevant"]
DISPLAY = {
    "relevant": "Relevant",
    "partially_relevant": "Partially relevant",
    "irrelevant": "Irrelevant",
}


@pytest.fixture
def pairs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "query_id": ["q1", "q1", "q2"],
            "listing_id": ["L1", "L2", "L4"],
            "query": ["oak dining table", "oak dining table", "red wool scarf"],
            "title": ["Solid oak dining table, seats 6", "Oak-veneer coffee table", "Rød scarf"],
            "brand": ["Woodcraft", None, "Lumi"],
            "category": [np.array(["Furniture", "Tables"]), None, np.array(["Accessories"])],
            "current_label": ["relevant", "partially_relevant", None],
        }
    )


def test_csv_round_trip(pairs, tmp_path):
    path = tmp_path / "review.csv"
    export_review_csv(pairs, path, LABELS, DISPLAY)
    with path.open(encoding="utf-8-sig") as handle:
        sheet = list(csv.DictReader(handle))
    assert list(sheet[0]) == [
        "query_id",
        "listing_id",
        "query",
        "title",
        "brand",
        "category",
        "current_label",
        "label",
        "annotator_id",
        "comment",
    ]
    assert sheet[0]["category"] == "Furniture > Tables"
    assert [row["current_label"] for row in sheet] == ["Relevant", "Partially relevant", ""]
    assert {row["label"] for row in sheet} == {""}

    # an annotator fills it in: an id, a display name in other case, one row left blank
    filled = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    filled["label"] = ["relevant", "irrelevant", ""]
    filled.loc[1, "label"] = "IRRELEVANT"
    filled["annotator_id"] = "ann1"
    filled.loc[1, "comment"] = "a coffee table"
    filled.to_csv(path, index=False, encoding="utf-8-sig")

    result = import_review_csv(path, LABELS, DISPLAY, guideline_version="v2")
    judgments = result.judgments
    assert judgments[["query_id", "listing_id", "annotator_id", "label"]].values.tolist() == [
        ["q1", "L1", "ann1", "relevant"],
        ["q1", "L2", "ann1", "irrelevant"],
    ]
    assert judgments["source_label"].tolist() == ["relevant", "IRRELEVANT"]
    assert judgments["rationale"].isna().tolist() == [True, False]
    assert set(judgments["source"]) == {"human"} and set(judgments["guideline_version"]) == {"v2"}
    assert result.skipped.to_dict("records") == [
        {"query_id": "q2", "listing_id": "L4", "where": "row 4", "reason": "blank label"}
    ]
    write_parquet(judgments, tmp_path / "judgments.parquet", JUDGMENT_SCHEMA)  # fits the contract


def test_csv_import_of_a_hand_filled_file():
    result = import_review_csv(FIXTURES / "review_filled.csv", LABELS, DISPLAY, annotator_id="ann7")
    assert result.judgments[["listing_id", "label", "annotator_id"]].values.tolist() == [
        ["L1", "relevant", "ann7"],
        ["L2", "partially_relevant", "ann7"],
        ["L4", "irrelevant", "ann9"],  # a filled annotator cell wins over the default
    ]
    assert result.skipped["where"].tolist() == ["row 4"]


def test_csv_bad_label_names_file_row_and_allowed_values(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("query_id,listing_id,label,annotator_id\nq1,L1,relevant,a\nq1,L2,meh,a\n")
    with pytest.raises(DataError) as error:
        import_review_csv(path, LABELS, DISPLAY)
    message = str(error.value)
    assert str(path) in message and "['meh']" in message and "row(s) [3]" in message
    assert "partially_relevant (Partially relevant)" in message


def test_csv_labelled_row_without_annotator_is_an_error():
    with pytest.raises(DataError, match=r"row\(s\) \[2, 3\] have no annotator_id"):
        import_review_csv(FIXTURES / "review_filled.csv", LABELS, DISPLAY)


def test_csv_duplicate_judgment_names_spreadsheet_rows(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text(
        "query_id,listing_id,label,annotator_id\nq1,L1,relevant,a\nq1,L1,irrelevant,a\n"
    )
    with pytest.raises(DataError, match=r"row\(s\) \[2, 3\]"):
        import_review_csv(path, LABELS, DISPLAY)


def test_label_studio_config_has_one_choice_per_label():
    view = ET.fromstring(label_studio_config(LABELS, DISPLAY))
    assert view.tag == "View"
    assert [text.get("name") for text in view.iter("Text")] == ["query", "listing"]
    (choices,) = view.iter("Choices")
    assert choices.attrib == {
        "name": "relevance",
        "toName": "listing",
        "choice": "single",
        "required": "true",
    }
    assert [choice.get("value") for choice in choices] == list(DISPLAY.values())


def test_label_studio_tasks_carry_pair_ids_text_and_pre_annotations(pairs, tmp_path):
    path = tmp_path / "tasks.json"
    export_label_studio_tasks(pairs, path, LABELS, DISPLAY)
    tasks = json.loads(path.read_text())
    assert tasks[0]["data"] == {
        "query_id": "q1",
        "listing_id": "L1",
        "query": "oak dining table",
        "listing": "Solid oak dining table, seats 6 | Woodcraft | Furniture > Tables",
    }
    assert tasks[1]["predictions"][0]["result"] == [
        {
            "from_name": "relevance",
            "to_name": "listing",
            "type": "choices",
            "value": {"choices": ["Partially relevant"]},
        }
    ]
    assert "predictions" not in tasks[2]  # no current label, no pre-annotation

    # what Label Studio exports after an annotator accepts each pre-annotation reads back
    for task in tasks[:2]:
        task["annotations"] = [
            {"completed_by": 7, "result": task["predictions"][0]["result"], "was_cancelled": False}
        ]
    tasks[2]["annotations"] = []
    path.write_text(json.dumps(tasks))
    result = import_label_studio_export(path, LABELS, DISPLAY)
    assert result.judgments["label"].tolist() == ["relevant", "partially_relevant"]
    assert result.skipped["reason"].tolist() == ["no annotations"]


def test_label_studio_export_import():
    # 3 tasks; annotators 1 (completed_by an int) and 2 (a user object, newer exports);
    # annotator 2 cancelled task 102; nobody annotated task 103.
    result = import_label_studio_export(FIXTURES / "label_studio_export.json", LABELS, DISPLAY)
    judgments = result.judgments
    assert judgments[["query_id", "listing_id", "annotator_id", "label"]].values.tolist() == [
        ["q1", "L1", "1", "relevant"],
        ["q1", "L1", "2", "partially_relevant"],
        ["q1", "L9", "1", "irrelevant"],
    ]
    assert judgments["source_label"].tolist() == ["Relevant", "Partially relevant", "Irrelevant"]
    assert set(judgments["source"]) == {"human"}
    assert judgments["created_at"].iloc[0] == pd.Timestamp("2025-03-04T10:15:02.118233Z")
    assert result.skipped.to_dict("records") == [
        {
            "query_id": "q1",
            "listing_id": "L9",
            "where": "task 1 annotation 1",
            "reason": "cancelled",
        },
        {"query_id": "q2", "listing_id": "L4", "where": "task 2", "reason": "no annotations"},
    ]


def test_label_studio_unknown_choice_names_file_and_task(tmp_path):
    tasks = json.loads((FIXTURES / "label_studio_export.json").read_text())
    tasks[1]["annotations"][0]["result"][0]["value"]["choices"] = ["Perfect"]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks))
    with pytest.raises(DataError) as error:
        import_label_studio_export(path, LABELS, DISPLAY)
    message = str(error.value)
    assert str(path) in message and "task 1 (id 102)" in message and "'Perfect'" in message
    assert "irrelevant (Irrelevant)" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "cannot read"),
        ('{"tasks": []}', "expected a list of tasks"),
        (
            '[{"id": 9, "data": {"query_id": "q", "listing_id": "l"}, "relevance": "Relevant"}]',
            r"task 0 \(id 9\): missing key 'annotations'",
        ),  # a JSON-MIN export, not JSON
    ],
)
def test_label_studio_bad_files(tmp_path, content, expected):
    path = tmp_path / "export.json"
    path.write_text(content)
    with pytest.raises(DataError, match=expected):
        import_label_studio_export(path, LABELS, DISPLAY)
