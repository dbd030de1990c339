import numpy as np
import pandas as pd
import pytest

from relevance_kit.baselines import BASELINES, make_baseline
from relevance_kit.errors import ConfigError, DataError
from relevance_kit.report import PREDICTION_COLUMNS

LABELS = ["relevant", "partially_relevant", "irrelevant"]

LISTINGS = pd.DataFrame(
    {
        "listing_id": ["scarf", "hat", "bolt", "mug"],
        "title": [
            "Red knitted wool scarf",
            "Wool beanie hat",
            "stainless steel bolt",
            "Ceramic coffee mug",
        ],
        "brand": ["Knitco", "Knitco", "Fastenall", "Potter"],
        "color": ["red", "grey", None, "white"],
        "category": [
            ["Accessories", "Scarves"],
            ["Accessories", "Hats"],
            ["Hardware", "Bolts"],
            ["Kitchen", "Mugs"],
        ],
    }
)
QUERIES = pd.DataFrame({"query_id": ["q1", "q2"], "text": ["red wool scarf", "steel bolt m8"]})
# every query against every listing; the annotator's labels
TRAIN = pd.DataFrame(
    {
        "query_id": ["q1"] * 4 + ["q2"] * 4,
        "listing_id": ["scarf", "hat", "bolt", "mug"] * 2,
        "label": [
            "relevant", "partially_relevant", "irrelevant", "irrelevant",
            "irrelevant", "irrelevant", "relevant", "irrelevant",
        ],
    }
)  # fmt: skip


def check_contract(pred: pd.DataFrame, pairs: pd.DataFrame) -> None:
    assert list(pred.columns) == PREDICTION_COLUMNS
    assert pred[["query_id", "listing_id"]].equals(
        pairs[["query_id", "listing_id"]].reset_index(drop=True)
    )
    assert set(pred["label"]) <= set(LABELS)


def test_registry_names_and_unknown_name():
    assert set(BASELINES) == {"majority", "bm25", "minilm_zero_shot"}
    with pytest.raises(ConfigError, match="allowed"):
        make_baseline("oracle", QUERIES, LISTINGS)


def test_majority_predicts_the_training_mode():
    baseline = make_baseline("majority", QUERIES, LISTINGS).fit(TRAIN, LABELS)
    pred = baseline.predict(TRAIN)
    check_contract(pred, TRAIN)
    assert set(pred["label"]) == {"irrelevant"}
    assert pred["score"].isna().all()


def test_majority_breaks_ties_by_taxonomy_order():
    tied = TRAIN.iloc[[0, 2]].assign(label=["irrelevant", "relevant"])
    assert make_baseline("majority", QUERIES, LISTINGS).fit(tied, LABELS).label == "relevant"


def test_bm25_ranks_the_title_match_above_a_non_match():
    baseline = make_baseline("bm25", QUERIES, LISTINGS)
    scores = dict(zip(TRAIN["listing_id"] + "/" + TRAIN["query_id"], baseline.pair_scores(TRAIN)))
    assert scores["scarf/q1"] > scores["hat/q1"] > scores["bolt/q1"]
    assert scores["bolt/q2"] > scores["scarf/q2"]


def test_bm25_fit_predict_follows_the_contract():
    baseline = make_baseline("bm25", QUERIES, LISTINGS).fit(TRAIN, LABELS)
    pairs = TRAIN.iloc[::-1]  # any order and index
    pred = baseline.predict(pairs)
    check_contract(pred, pairs)
    assert np.isfinite(pred["score"]).all()
    assert (
        pred.set_index("listing_id").loc["bolt"].query("query_id == 'q2'")["label"].item()
        == "relevant"
    )


def test_unknown_ids_and_labels_are_errors():
    baseline = make_baseline("majority", QUERIES, LISTINGS).fit(TRAIN, LABELS)
    with pytest.raises(DataError, match="ghost"):
        baseline.predict(pd.DataFrame({"query_id": ["q1"], "listing_id": ["ghost"]}))
    with pytest.raises(DataError, match="exact"):
        make_baseline("majority", QUERIES, LISTINGS).fit(TRAIN.assign(label="exact"), LABELS)


@pytest.fixture(scope="module")
def minilm():
    return make_baseline("minilm_zero_shot", QUERIES, LISTINGS, batch_size=2)


def test_minilm_cosine_prefers_the_paraphrase(minilm):
    vectors = minilm.encoder.encode(
        ["red wool scarf", "Red knitted wool scarf", "stainless steel bolt"]
    )
    assert np.linalg.norm(vectors, axis=1) == pytest.approx(1.0, abs=1e-5)
    scarf, bolt = vectors[1:] @ vectors[0]
    assert scarf > bolt + 0.3


def test_minilm_fit_predict_follows_the_contract(minilm):
    minilm.fit(TRAIN, LABELS)
    pred = minilm.predict(TRAIN)
    check_contract(pred, TRAIN)
    assert pred["score"].between(-1, 1).all()
    scores = pred.set_index(["query_id", "listing_id"])["score"]
    assert scores["q1", "scarf"] > scores["q1", "bolt"]
    assert scores["q2", "bolt"] > scores["q2", "mug"]
