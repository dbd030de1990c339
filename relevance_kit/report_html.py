"""The one page a person opens to see the whole cascade (reports/index.html): the tier table,
the confusion matrices, the integration effects, the monitoring series (labelled by the
teacher, with its alerts) and the A/B test from the impression log (per variant, with CIs). Self-contained:
PNGs are embedded as data URIs, so the file can be mailed or opened from any folder."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path

from relevance_kit.integrate.experiment import METRIC_TITLES
from relevance_kit.integrate.results import METRICS

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f0f4f8; } td:first-child, th:first-child { text-align: left; }
.good { color: #11772d; font-weight: 600; } .bad { color: #b3261e; font-weight: 600; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; } .figures figure { margin: 0; }
figcaption { text-align: center; font-size: 0.85em; } .note { color: #666; font-size: 0.9em; }
img { max-width: 100%; } .small img { width: 380px; }
"""


def render_page(
    *,
    experiment: str,
    tiers: Mapping | None,
    confusion: Mapping[str, bytes],
    integration: Mapping | None,
    effects_png: bytes | None,
    monitoring: Mapping | None,
    series_png: bytes | None,
    abtest: Mapping | None = None,
) -> str:
    """The page's HTML; a missing part shows which stage produces it."""
    sections = [
        _section("Tiers on the golden set", _tiers(tiers), "evaluate"),
        _section("Confusion matrices", _figures(confusion, "small") if confusion else None, "evaluate"),
        _section("Search integration", _integration(integration, effects_png), "integrate"),
        _section("Daily monitoring", _monitoring(monitoring, series_png), "monitor"),
        _section("A/B test from the impression log", _abtest(abtest), "abtest"),
    ]
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>relevance-kit: {escape(experiment)}</title>"
        f"<style>{STYLE}</style></head><body><h1>relevance-kit cascade</h1>"
        f"<p class='note'>experiment <b>{escape(experiment)}</b>: human golden set → annotator → teacher → "
        "student → search integration → monitoring</p>" + "".join(sections) + "</body></html>\n"
    )


def _section(title: str, body: str | None, stage: str) -> str:
    content = body if body is not None else f"<p class='note'>Not produced yet: run <code>dvc repro {stage}</code>.</p>"
    return f"<h2>{escape(title)}</h2>{content}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _ci(value: Mapping) -> str:
    return f"{value['estimate']:.3f} <span class='note'>[{value['low']:.3f}, {value['high']:.3f}]</span>"


def _signed(row: Mapping, better_when: int = 1) -> str:
    """A paired difference with its CI, coloured when the CI excludes zero."""
    css = ""
    if row["low"] > 0 or row["high"] < 0:
        css = "good" if (row["diff"] > 0) == (better_when > 0) else "bad"
    return f"<span class='{css}'>{row['diff']:+.3f}</span> <span class='note'>[{row['low']:+.3f}, {row['high']:+.3f}]</span>"


def _tiers(tiers: Mapping | None) -> str | None:
    if not tiers:
        return None
    labels = tiers["labels"]
    rows = []
    for name, row in tiers["tiers"].items():
        vs = row["vs_reference"]
        rows.append(
            [escape(name), f"{row['n_predicted']}/{row['n_pairs']}", _ci(row["macro_f1"])]
            + [_ci(row["f1"][label]) for label in labels]
            + (["reference", ""] if vs is None else [_signed(vs), f"{vs['p_value']:.3g}"])
        )
    header = ["tier", "predicted", "macro-F1", *(f"F1 {label}" for label in labels), f"Δ macro-F1 vs {tiers['reference']}", "p"]
    note = f"<p class='note'>{tiers['n_pairs']} golden pairs, {tiers['n_queries']} queries; intervals resample queries.</p>"
    return note + _table(header, rows)


def _integration(report: Mapping | None, effects_png: bytes | None) -> str | None:
    if not report:
        return None
    k = report["k"]
    better = {"pct_relevant": 1, "pct_irrelevant": -1, "ndcg": 1}
    rows = []
    for arm, means in report["arms"].items():
        vs = report["vs_control"].get(arm)
        cells = [escape(arm), *(f"{means[m]:.3f}" for m in METRICS)]
        for m in METRICS:
            cells += ["reference", ""] if vs is None else [_signed(vs[m], better[m]), f"{vs[m]['p_ttest']:.3g} / {vs[m]['p_wilcoxon']:.3g}"]
        rows.append(cells)
    header = ["arm", *(f"{METRIC_TITLES[m]}@{k}" for m in METRICS)]
    for m in METRICS:
        header += [f"Δ {METRIC_TITLES[m]} [CI]", "p (t / Wilcoxon)"]
    note = (
        f"<p class='note'>{report['n_queries']} held-out queries; {escape(report['label_source'])} labels; "
        f"predicted relevance from the {escape(report['scorer'])} scorer; unjudged listings: "
        f"{escape(report['unjudged'])}. Δ vs {escape(report['control'])}, paired over queries.</p>"
    )
    figure = _figures({"Δ vs baseline with bootstrap CI": effects_png}) if effects_png else ""
    return note + _table(header, rows) + figure


def _monitoring(summary: Mapping | None, series_png: bytes | None) -> str | None:
    if not summary:
        return None
    facts = [
        ("watched metric", summary["metric"]), ("detector", summary["detector"]),
        ("labelled by", summary["tier"]), ("days", summary["days"]),
        ("regression injected from", summary["regression_from"] or "none"),
        ("alert days", ", ".join(summary["alert_days"]) or "none"),
        ("detected", summary["detected"]), ("false alarms", summary["false_alarms"]),
        ("mean before / after", f"{summary['mean_before']:.3f} / {summary['mean_after']:.3f}" if summary["mean_after"] is not None else f"{summary['mean_before']:.3f}"),
    ]  # fmt: skip
    table = _table(["", "value"], [[escape(k), escape(str(v))] for k, v in facts])
    return table + (_figures({"daily series": series_png}) if series_png else "")


def _abtest(report: Mapping | None) -> str | None:
    """Per variant: each metric's mean [CI]; per treatment: Δ vs control [CI], p, CUPED's Δ
    and variance reduction, and the requests per variant the configured effect needs."""
    if not report:
        return None
    k, control = report["k"], report["control"]
    better = {"pct_relevant": 1, "pct_irrelevant": -1, "ndcg": 1}
    header = ["variant", "requests"]
    for m in METRICS:
        header += [f"{METRIC_TITLES[m]}@{k} [CI]", f"Δ vs {control} [CI]", "p", "CUPED Δ [CI] (var. −)", "n / variant needed"]
    rows = []
    for arm, summary in report["variants"].items():
        vs = report["vs_control"].get(arm)
        cells = [escape(arm), str(summary["n_requests"])]
        for m in METRICS:
            cells.append(f"{summary[m]['mean']:.3f} <span class='note'>[{summary[m]['low']:.3f}, {summary[m]['high']:.3f}]</span>")
            if vs is None:
                cells += ["control", "", "", ""]
                continue
            row = vs[m]
            cup = row.get("cuped")
            cells += [
                _signed(row, better[m]), f"{row['p_value']:.3g}",
                "" if cup is None else f"{_signed(cup, better[m])} ({cup['variance_reduction']:.0%})",
                str(row.get("requests_per_variant_needed", "")) + ("" if cup is None or "requests_per_variant_needed" not in cup else f" ({cup['requests_per_variant_needed']} CUPED)"),
            ]
        rows.append(cells)
    injected = report.get("injected", {}).get("replaced_share")
    note = (
        f"<p class='note'>{escape(report['label_source'])} labels; requests sampled per variant; "
        f"{report['confidence']:.0%} bootstrap intervals, Welch p-values; CUPED on each query's pre-period mean "
        f"({report['n_pre_requests']} pre-period requests)"
        + (f"; injected: share of slots replaced by random listings {escape(str(injected))}" if injected else "")
        + ".</p>"
    )
    return note + _table(header, rows)


def _figures(pngs: Mapping[str, bytes], css: str = "") -> str:
    return f"<div class='figures {css}'>" + "".join(
        f"<figure><img alt='{escape(name)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"
        f"<figcaption>{escape(name)}</figcaption></figure>"
        for name, png in pngs.items()
    ) + "</div>"


def read_pngs(folder: Path) -> dict[str, bytes]:
    """Every PNG of a folder by stem (sorted), or nothing when the folder is absent."""
    return {p.stem: p.read_bytes() for p in sorted(folder.glob("*.png"))} if folder.exists() else {}
