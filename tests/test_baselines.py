import numpy as np
import pandas as pd
import pytest

from relevance_kit.errors import ConfigError, DataError
from relevance_kit.evaluation.baselines import BASELINES, make_baseline
from relevance_kit.schemas import PREDICTION_COLUMNS
from tests.conftest import colour_product_label

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
    assert set(BASELINES) == {"majority", "bm25", "minilm_zero_shot", "ltr_gbdt"}
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
    vectors = minilm.cosine.encoder.encode(
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


LTR_OPTIONS = {"n_estimators": 200, "learning_rate": 0.1, "num_leaves": 7, "early_stopping_rounds": 20,
               "validation_fraction": 0.25, "seed": 0, "threads": 1}  # fmt: skip


def lexical_world(n_queries: int = 60) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Queries of two colour words and an item; a listing is relevant when it has both words,
    partially relevant with the item only, irrelevant otherwise: learnable from overlap."""
    rng = np.random.default_rng(0)
    colours, items = (
        ["red", "blue", "green", "black"],
        ["scarf", "mug", "bolt", "lamp", "chair", "rug"],
    )
    listings = pd.DataFrame([{"listing_id": f"{c}-{i}-{k}", "title": f"{c} {i} model {k}", "brand": None, "color": None,
                              "category": []} for c in colours for i in items for k in range(3)])  # fmt: skip
    queries, pairs = [], []
    for q in range(n_queries):
        colour, item = rng.choice(colours), rng.choice(items)
        queries.append({"query_id": f"q{q}", "text": f"{colour} {item}"})
        for lid in rng.choice(listings["listing_id"], 8, replace=False):
            c, i, _ = lid.split("-")
            label = colour_product_label((colour, item), (c, i))
            pairs.append({"query_id": f"q{q}", "listing_id": lid, "label": label})
        pairs.append({"query_id": f"q{q}", "listing_id": f"{colour}-{item}-0", "label": "relevant"})
    return (
        pd.DataFrame(queries),
        listings,
        pd.DataFrame(pairs).drop_duplicates(["query_id", "listing_id"]),
    )


def test_ltr_gbdt_learns_lexical_relevance_and_keeps_the_contract():
    queries, listings, pairs = lexical_world()
    train, test = (
        pairs[pairs["query_id"].isin([f"q{i}" for i in range(40)])],
        pairs[~pairs["query_id"].isin([f"q{i}" for i in range(40)])],
    )
    ltr = make_baseline("ltr_gbdt", queries, listings, semantic=False, **LTR_OPTIONS).fit(
        train, LABELS
    )
    pred = ltr.predict(test[["query_id", "listing_id"]])
    assert list(pred.columns[: len(PREDICTION_COLUMNS)]) == PREDICTION_COLUMNS
    probs = pred[[f"p_{label}" for label in LABELS]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    majority = make_baseline("majority", queries, listings).fit(train, LABELS).predict(test)
    accuracy = (pred["label"].to_numpy() == test["label"].to_numpy()).mean()
    assert accuracy > 0.9 > (majority["label"].to_numpy() == test["label"].to_numpy()).mean()
    # expected gain orders the classes: relevant pairs score above irrelevant ones
    score = pred.set_index(test.index)["score"]
    assert score[test["label"] == "relevant"].mean() > score[test["label"] == "irrelevant"].mean()


def test_lexical_features_table():
    from relevance_kit.lexical import CatalogBM25, lexical_features

    pairs = TRAIN[["query_id", "listing_id"]]
    feats = lexical_features(
        pairs, dict(zip(QUERIES["query_id"], QUERIES["text"])), LISTINGS, CatalogBM25(LISTINGS)
    )
    row = feats.iloc[0]  # "red wool scarf" vs "Red knitted wool scarf" (+ brand, colour, category)
    assert (
        row["query_overlap"] == 1.0 and row["title_coverage"] == 0.75 and row["query_length"] == 3.0
    )
    assert feats["bm25"].iloc[0] > feats["bm25"].iloc[3]  # scarf query: scarf above the mug
