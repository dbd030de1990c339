"""The frame contracts: a file read without its columns is named, and the helpers producers
build their frames with (expected gain, soft labels) compute what the contracts say."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from relevance_kit.errors import DataError
from relevance_kit.io import write_parquet
from relevance_kit.schemas import LABELLED_PAIRS, expected_gain, read_frame, soft_label_frame

LABELS = ["relevant", "partially_relevant", "irrelevant"]
PAIRS = pd.DataFrame({"query_id": ["q", "q"], "listing_id": ["a", "b"]})


def test_read_frame_names_the_file_and_the_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "golden.parquet"
    write_parquet(PAIRS, path)
    with pytest.raises(DataError, match=r"golden\.parquet: missing column\(s\) \['label'\]"):
        read_frame(path, LABELLED_PAIRS)


def test_soft_labels_carry_argmax_and_entropy_and_give_the_expected_gain() -> None:
    probs = np.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    frame = soft_label_frame(PAIRS, probs, LABELS)
    assert frame["label"].tolist() == ["relevant", "relevant"]
    assert frame["entropy"].to_numpy() == pytest.approx([0.0, np.log(3)])
    gains = {"relevant": 1.0, "partially_relevant": 0.5, "irrelevant": 0.0}
    assert expected_gain(frame, gains) == pytest.approx([1.0, 0.5])


def test_soft_labels_must_sum_to_one() -> None:
    with pytest.raises(DataError, match="sum to 1"):
        soft_label_frame(PAIRS, np.array([[0.5, 0.0, 0.0], [1.0, 0.0, 0.0]]), LABELS)
