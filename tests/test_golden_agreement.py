"""Agreement metrics checked against values worked out by hand (or the textbook's)."""

import json

import pandas as pd
import pytest

from relevance_kit.golden import agreement_report

LABELS = ["relevant", "partially_relevant", "irrelevant"]  # best first
SHORT = {"R": "relevant", "P": "partially_relevant", "I": "irrelevant"}


def table(coders: dict[str, str], labels: dict[str, str]) -> pd.DataFrame:
    """Judgments from one string per annotator, one character per pair ('.' = not judged)."""
    rows = [
        (f"q{unit}", "L", annotator, labels[value])
        for annotator, values in coders.items()
        for unit, value in enumerate(values.split())
        if value != "."
    ]
    return pd.DataFrame(rows, columns=["query_id", "listing_id", "annotator_id", "label"])


def test_two_annotators_ten_pairs():
    # pair: 1 2 3 4 5 6 7 8 9 10
    # A:    R R R R P P P I I I
    # B:    R R R P P P I I I R
    # Agree on 7 of 10: p_o = 0.7; disagreement rate 3/10.
    # Marginals A = B = (R .4, P .3, I .3): p_e = .16 + .09 + .09 = .34
    # kappa = (.7 - .34) / (1 - .34) = .36 / .66 = 6/11 = 0.5454...
    # Linear weights |i - j| in taxonomy order R=0, P=1, I=2:
    #   observed weighted disagreement = (1 [R/P] + 1 [P/I] + 2 [I/R]) / 10 = .4
    #   expected = sum_{i!=j} |i-j| pA_i pB_j = 2(.4*.3) + 2(2*.4*.3) + 2(.3*.3) = .9
    #   kappa_w = 1 - .4/.9 = 5/9 = 0.5555...
    # Krippendorff nominal: n = 20 pairable values, R 8, P 6, I 6; each disagreeing unit adds
    #   2/(2-1) = 2 off-diagonal coincidences, 6 in all; sum_{c!=k} n_c n_k = 400 - 136 = 264
    #   alpha = 1 - (n-1) * 6 / 264 = 1 - 114/264 = 0.56818...
    judgments = table({"A": "R R R R P P P I I I", "B": "R R R P P P I I I R"}, SHORT)
    report = agreement_report(judgments, LABELS)
    assert report["n_pairs"] == 10 and report["n_annotators"] == 2
    assert report["pairs_with_2plus"] == 10 and report["cohen_kappa_pairs"] == 10
    assert report["disagreement_rate"] == pytest.approx(0.3)
    assert report["cohen_kappa"] == pytest.approx(6 / 11)
    assert report["cohen_kappa_linear"] == pytest.approx(5 / 9)
    assert report["krippendorff_alpha_nominal"] == pytest.approx(1 - 114 / 264)
    assert report["note"] is None
    json.dumps(report)  # plain Python types, ready for metrics/*.json


def test_krippendorff_2011_textbook_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 observers,
    # 12 units, values 1-5, missing data. Unit 12 has one value, so it is not pairable.
    # Nominal by hand: n = 40 pairable values; value totals 1:9 2:13 3:10 4:5 5:3.
    #   Off-diagonal coincidences: unit 2 (2,2,3,2) 6/3 = 2; unit 6 (1,2,3,4) 12/3 = 4;
    #   unit 8 (1,1,2,1) 6/3 = 2; total 8. sum_{c!=k} n_c n_k = 1600 - 384 = 1216.
    #   alpha = 1 - 39 * 8 / 1216 = 0.7434 (the paper: .743). Ordinal: the paper's .815.
    values = {str(v): f"v{v}" for v in range(1, 6)}
    judgments = table(
        {
            "A": "1 2 3 3 2 1 4 1 2 . . .",
            "B": "1 2 3 3 2 2 4 1 2 5 . 3",
            "C": ". 3 3 3 2 3 4 2 2 5 1 .",
            "D": "1 2 3 3 2 4 4 1 2 5 1 .",
        },
        values,
    )
    report = agreement_report(judgments, [f"v{v}" for v in range(1, 6)])
    assert report["krippendorff_alpha_nominal"] == pytest.approx(1 - 39 * 8 / 1216)
    assert report["krippendorff_alpha_ordinal"] == pytest.approx(0.815, abs=5e-4)
    assert report["n_pairs"] == 12 and report["pairs_with_2plus"] == 11
    # 4 annotators: Cohen's kappa does not apply, and the note says so
    assert report["cohen_kappa"] is None and "exactly two annotators" in report["note"]
    # units 2, 6 and 8 of the 11 pairable ones disagree
    assert report["disagreement_rate"] == pytest.approx(3 / 11)


def test_single_annotator_data_says_agreement_is_unmeasurable():
    judgments = table({"esci": "R P I I R"}, SHORT)
    report = agreement_report(judgments, LABELS)
    assert report["n_pairs"] == 5 and report["pairs_with_2plus"] == 0
    metrics = (
        "disagreement_rate",
        "cohen_kappa",
        "cohen_kappa_linear",
        "krippendorff_alpha_nominal",
        "krippendorff_alpha_ordinal",
    )
    assert all(report[name] is None for name in metrics)
    assert "more than one annotator" in report["note"]


def test_perfect_agreement_on_one_label_is_undefined_not_nan():
    judgments = table({"A": "R R R", "B": "R R R"}, SHORT)
    report = agreement_report(judgments, LABELS)
    assert report["disagreement_rate"] == 0.0
    assert report["cohen_kappa"] is None and report["krippendorff_alpha_nominal"] is None
    assert "undefined" in report["note"]
