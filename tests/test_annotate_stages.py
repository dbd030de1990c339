"""The validate_annotator and annotate stage scripts, run as DVC runs them: the human case
(nothing to validate, evaluate skips the tier) and a failed gate that keeps the pool unlabelled."""

from __future__ import annotations

import json

import pandas as pd

from relevance_kit.annotate.validation import check_gate, gate_message, validation_report
from relevance_kit.config import AnnotatorGate
from tests.conftest import files_under, run_stage


def test_human_annotator_has_nothing_to_validate(project) -> None:
    root = project(["experiment=ci_tiny"])
    done = run_stage("validate_annotator", root)
    assert done.returncode == 0, done.stderr
    report = json.loads((root / "metrics" / "annotator_validation.json").read_text())
    assert report["gate"]["passed"] and "nothing to validate" in report["note"]
    preds = pd.read_parquet(root / "data" / "predictions" / "annotator.parquet")
    assert len(preds) == 0 and "golden" in preds.attrs["tier_note"]


def test_failed_gate_keeps_the_pool_unlabelled(project, demo_data) -> None:
    root = project(["experiment=local_llm", "annotator.gate.on_fail=stop"])
    (root / "data").mkdir()
    for folder in ("prepared", "splits"):
        (root / "data" / folder).symlink_to(demo_data / folder)
    (root / "metrics").mkdir()
    gate = {"passed": False, "misses": ["macro-F1 0.210 < annotator.gate.min_macro_f1 = 0.6"]}
    (root / "metrics" / "annotator_validation.json").write_text(json.dumps({"gate": gate}))
    done = run_stage("annotate", root)
    assert (
        done.returncode == 2 and "macro-F1 0.210" in done.stderr and "not labelled" in done.stderr
    )
    assert not files_under(root, "data/annotations")


def test_gate_names_what_was_measured_and_the_knob() -> None:
    golden = pd.DataFrame({"query_id": ["a", "a", "b", "b"], "listing_id": ["1", "2", "3", "4"],
                           "label": ["relevant", "irrelevant", "relevant", "partially_relevant"]})  # fmt: skip
    preds = golden[["query_id", "listing_id"]].assign(
        label=["relevant", "relevant", None, "irrelevant"],
        self_consistency=[1.0, 0.4, 0.0, 0.7],
        route=["accept", "review", "review", "accept"],
    )
    report = validation_report(golden, preds, ["relevant", "partially_relevant", "irrelevant"])
    assert report["unresolved"] == 1 and report["routed_to_review"] == 2
    buckets = {b["self_consistency"]: b for b in report["agreement_by_self_consistency"]}
    assert sum(b["pairs"] for b in buckets.values()) == 4
    gate = check_gate(
        report,
        AnnotatorGate(
            min_macro_f1=0.6,
            min_kappa=0.4,
            on_fail="stop",
            max_queries=None,
            max_pairs_per_query=None,
        ),
    )
    assert not gate["passed"] and len(gate["misses"]) == 2
    message = gate_message("o3", 4, gate["misses"])
    assert "annotator.gate.min_macro_f1 = 0.6" in message and "prompt.n_shots" in message
