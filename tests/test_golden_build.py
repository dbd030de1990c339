"""The golden stage's logic end to end: the dataset's single annotator plus a second
annotator's filled-in review sheet -> majority / tie-break labels, agreement, review queue."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from relevance_kit.errors import DataError
from relevance_kit.golden import export_review_csv, import_review_csv
from relevance_kit.golden.build import build_golden, read_annotation_file

LABELS = ["relevant", "partially_relevant", "irrelevant"]
DISPLAY = {
    "relevant": "Relevant",
    "partially_relevant": "Partially relevant",
    "irrelevant": "Irrelevant",
}

PAIRS = pd.DataFrame({"query_id": ["q1"] * 4, "listing_id": ["L1", "L2", "L3", "L4"]})
CONTEXT = PAIRS.assign(
    query="oak table", title=["Oak table", "Oak chair", "Pine table", "Oak bench"]
)
DATASET = PAIRS.assign(
    annotator_id="esci",
    source="human",
    label=["relevant", "partially_relevant", "irrelevant", "relevant"],
)


def _second_annotator(tmp_path: Path, labels: list[str]) -> Path:
    """Export the review sheet, fill it in as a second annotator would, return its path."""
    sheet = tmp_path / "review.csv"
    export_review_csv(CONTEXT, sheet, LABELS, DISPLAY)
    filled = pd.read_csv(sheet, encoding="utf-8-sig")
    filled["label"] = labels
    filled["annotator_id"] = "ann2"
    filled.to_csv(sheet, index=False)
    return sheet


@pytest.mark.parametrize(
    ("tie_break", "l4_label", "to_review"),
    [
        ("most_severe", "irrelevant", 0),
        ("least_severe", "relevant", 0),
        ("review", None, 1),
    ],
)
def test_two_annotators_tie_breaks_and_review_queue(
    tmp_path: Path, tie_break: str, l4_label, to_review: int
) -> None:
    # ann2 agrees on L1-L3 (display names and ids both accepted) and disagrees on L4.
    sheet = _second_annotator(
        tmp_path, ["Relevant", "partially_relevant", "Irrelevant", "irrelevant"]
    )
    imports = {str(sheet): read_annotation_file(sheet, LABELS, DISPLAY)}
    result = build_golden(PAIRS, DATASET, imports, LABELS, tie_break, CONTEXT)

    by_listing = dict(zip(result.golden["listing_id"], result.golden["label"]))
    assert by_listing.get("L1") == "relevant" and by_listing.get("L3") == "irrelevant"
    assert by_listing.get("L4") == l4_label
    assert result.report["to_review"] == to_review == len(result.review)
    # By hand: esci R,P,I,R vs ann2 R,P,I,I. p_o = 3/4; marginals esci (2,1,1)/4, ann2
    # (1,1,2)/4, so p_e = (2+1+2)/16 = 5/16 and kappa = (12/16 - 5/16) / (11/16) = 7/11.
    agreement = result.report["agreement"]
    assert agreement["n_annotators"] == 2 and agreement["disagreement_rate"] == pytest.approx(0.25)
    assert agreement["cohen_kappa"] == pytest.approx(7 / 11)
    if to_review:
        assert result.review.loc[0, "title"] == "Oak bench"


def test_unknown_annotation_file_kind_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "labels.xlsx"
    path.write_text("x")
    with pytest.raises(DataError, match="must be .csv"):
        read_annotation_file(path, LABELS, DISPLAY)


def test_imported_labels_round_trip_through_the_sheet(tmp_path: Path) -> None:
    sheet = _second_annotator(tmp_path, ["Relevant", "Partially relevant", "", "irrelevant"])
    imported = import_review_csv(sheet, LABELS, DISPLAY)
    assert list(imported.judgments["label"]) == ["relevant", "partially_relevant", "irrelevant"]
    assert len(imported.skipped) == 1  # the blank row is counted, never guessed
