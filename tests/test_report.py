import numpy as np
import pandas as pd
import pytest

from relevance_kit.errors import DataError
from relevance_kit.evaluation.plots import confusion_rows, plot_confusion
from relevance_kit.evaluation.tier_table import render_markdown, tier_table
from relevance_kit.io import write_json
from relevance_kit.schemas import PREDICTION_COLUMNS, prediction_frame, prob_column

LABELS = ["relevant", "partially_relevant", "irrelevant"]
GAINS = {"relevant": 1.0, "partially_relevant": 0.5, "irrelevant": 0.0}


@pytest.fixture
def golden() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 400
    return pd.DataFrame(
        {
            "query_id": np.repeat([f"q{i:02d}" for i in range(40)], n // 40),
            "listing_id": [f"l{i}" for i in range(n)],
            "label": rng.choice(LABELS, size=n, p=[0.5, 0.3, 0.2]),
        }
    )


@pytest.fixture
def predictions(golden) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(1)
    noisy = np.where(
        rng.random(len(golden)) < 0.7, golden["label"], rng.choice(LABELS, len(golden))
    )
    partial = prediction_frame(golden, noisy).iloc[: len(golden) // 2]  # abstains on half
    return {
        "majority": prediction_frame(golden, ["relevant"] * len(golden)),
        "noisy": prediction_frame(golden, noisy, rng.random(len(golden))),
        "oracle": prediction_frame(
            golden.sample(frac=1, random_state=0), golden.sample(frac=1, random_state=0)["label"]
        ),
        "half": partial,
    }


@pytest.fixture
def table(golden, predictions) -> dict:
    return tier_table(
        golden,
        predictions,
        LABELS,
        n_resamples=300,
        seed=0,
        reference_tier=["majority", "noisy"],
        gains=GAINS,
    )


def test_every_tier_is_scored_and_the_best_baseline_is_the_reference(table, golden):
    assert list(table["tiers"]) == ["majority", "noisy", "oracle", "half"]
    assert table["reference"] == "noisy"
    assert table["n_pairs"] == len(golden) and table["n_queries"] == 40
    oracle = table["tiers"]["oracle"]
    assert oracle["macro_f1"] == {"estimate": 1.0, "low": 1.0, "high": 1.0}
    assert oracle["cohen_kappa"] == pytest.approx(1.0)
    assert oracle["vs_reference"]["diff"] > 0 and oracle["vs_reference"]["p_value"] < 0.05
    assert table["tiers"]["noisy"]["vs_reference"] is None
    majority = table["tiers"]["majority"]
    assert majority["f1"]["irrelevant"]["estimate"] == 0.0
    assert majority["confusion_matrix"][2] == [int((golden["label"] == "irrelevant").sum()), 0, 0]
    for row in table["tiers"].values():
        ci = row["macro_f1"]
        assert ci["low"] <= ci["estimate"] <= ci["high"]


def test_unpredicted_pairs_are_counted_as_errors(table, golden, predictions):
    half = table["tiers"]["half"]
    assert half["n_pairs"] == len(golden)
    assert half["n_predicted"] == len(golden) // 2 and half["coverage"] == 0.5
    assert sum(half["not_predicted"].values()) == len(golden) // 2
    assert sum(map(sum, half["confusion_matrix"])) == len(golden) // 2
    n_right = (predictions["half"]["label"] == golden["label"].iloc[: len(golden) // 2]).sum()
    assert half["accuracy"] == pytest.approx(n_right / len(golden))
    assert half["vs_reference"]["diff"] < 0


def test_named_reference_and_unknown_reference(golden, predictions):
    table = tier_table(golden, predictions, LABELS, 100, 0, reference_tier="majority", gains=GAINS)
    assert table["reference"] == "majority"
    with pytest.raises(DataError, match="bm25"):
        tier_table(golden, predictions, LABELS, 100, 0, reference_tier="bm25", gains=GAINS)


def test_bad_predictions_are_errors(golden, predictions):
    duplicated = pd.concat([predictions["noisy"], predictions["noisy"].head(1)])
    with pytest.raises(DataError, match="duplicate"):
        tier_table(golden, {"dup": duplicated}, LABELS, 100, 0, reference_tier="dup", gains=GAINS)
    with pytest.raises(DataError, match="score"):
        tier_table(
            golden,
            {"x": predictions["noisy"].drop(columns="score")},
            LABELS,
            100,
            0,
            "x",
            gains=GAINS,
        )
    wrong_label = predictions["noisy"].assign(label="exact")
    with pytest.raises(DataError, match="exact"):
        tier_table(golden, {"x": wrong_label}, LABELS, 100, 0, "x", gains=GAINS)


def test_table_is_json_and_markdown_names_every_tier(table, tmp_path):
    write_json(table, tmp_path / "tiers.json")
    markdown = render_markdown(table)
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in markdown.splitlines()
        if line.startswith("|")
    ]
    header, delimiter, body = rows[0], rows[1], rows[2:]
    assert [row[0] for row in body] == list(table["tiers"])
    assert all(set(cell) <= set(":-") for cell in delimiter) and all(
        len(row) == len(header) for row in rows
    )
    assert "F1 partially_relevant" in header and "vs noisy" in markdown
    assert "200/400" in [row[1] for row in body]
    assert header[-3:] == ["AUC relevant vs rest", "AUC irrelevant vs rest", "nDCG@10"]
    assert body[0][-3:] == ["—"] * 3  # majority has no score


def test_threshold_free_measures_need_a_score(table):
    """Majority and oracle carry labels only; noisy's score is random: AUC near chance."""
    assert table["tiers"]["majority"]["threshold_free"] is None
    assert table["tiers"]["oracle"]["threshold_free"] is None
    noisy = table["tiers"]["noisy"]["threshold_free"]
    assert noisy["scored_pairs"] == 400 and noisy["ndcg_queries"] <= 40
    for auc in noisy["auc_vs_rest"].values():
        assert auc["low"] < 0.5 < auc["high"]


def test_plot_confusion_writes_a_png(table, tmp_path):
    path = tmp_path / "plots" / "noisy.png"
    plot_confusion(table["tiers"]["noisy"]["confusion_matrix"], LABELS, path, "noisy")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000


def test_confusion_rows_cover_every_golden_pair(golden, predictions):
    rows = confusion_rows(golden, predictions["half"])
    assert list(rows.columns) == ["actual", "predicted"]
    assert len(rows) == len(golden)
    assert (rows["predicted"] == "not_predicted").sum() == len(golden) // 2
    assert rows["actual"].tolist() == golden["label"].tolist()


def test_prediction_frame_contract(golden):
    probs = {label: np.full(len(golden), 1 / 3) for label in LABELS}
    frame = prediction_frame(golden, golden["label"], probabilities=probs)
    assert list(frame.columns) == PREDICTION_COLUMNS + [prob_column(label) for label in LABELS]
    assert frame["score"].isna().all()
