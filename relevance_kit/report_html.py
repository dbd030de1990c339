"""The one page a person opens to see the whole cascade (reports/index.html): the tier table,
the ceiling that label noise puts on it, the learned tiers' spread over training seeds, the learning curve, the tiers on another
dataset's golden set
(transfer), the confusion matrices, the integration
effects, the monitoring series (labelled by the teacher, with its alerts) and the A/B test
from the impression log (per variant, with CIs). Self-contained:
PNGs are embedded as data URIs, so the file can be mailed or opened from any folder.
A Jinja2 template (autoescaped: tier, arm and label names are data) renders it."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path

from jinja2 import Environment, StrictUndefined

from relevance_kit.integrate.experiment import METRIC_TITLES
from relevance_kit.schemas import METRICS

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

# Direction in which each integration metric improves (colours a significant difference).
BETTER_WHEN = {"pct_relevant": 1, "pct_irrelevant": -1, "ndcg": 1}

PAGE = """\
{%- macro ci(v) -%}
{{ "%.3f"|format(v["estimate"]) }} <span class='note'>[{{ "%.3f"|format(v["low"]) }}, {{ "%.3f"|format(v["high"]) }}]</span>
{%- endmacro -%}
{%- macro signed(row, better_when=1) -%}
{%- set css = "" -%}
{%- if row["low"] > 0 or row["high"] < 0 -%}
{%- set css = "good" if (row["diff"] > 0) == (better_when > 0) else "bad" -%}
{%- endif -%}
<span class='{{ css }}'>{{ "%+.3f"|format(row["diff"]) }}</span> <span class='note'>[{{ "%+.3f"|format(row["low"]) }}, {{ "%+.3f"|format(row["high"]) }}]</span>
{%- endmacro -%}
{%- macro figures(pngs, css="") -%}
<div class='figures {{ css }}'>
{% for name, png in pngs.items() %}
<figure><img alt='{{ name }}' src='data:image/png;base64,{{ png|b64 }}'><figcaption>{{ name }}</figcaption></figure>
{% endfor %}
</div>
{%- endmacro -%}
{%- macro span(r) -%}
{{ "%.3f–%.3f"|format(r["min"], r["max"]) }}
{%- endmacro -%}
{%- macro missing(stage) -%}
<p class='note'>Not produced yet: run <code>dvc repro {{ stage }}</code>.</p>
{%- endmacro -%}
<!doctype html>
<html><head><meta charset='utf-8'><title>relevance-kit: {{ experiment }}</title><style>{{ style }}</style></head>
<body><h1>relevance-kit cascade</h1>
<p class='note'>experiment <b>{{ experiment }}</b>: human golden set → annotator → teacher → student → search integration → monitoring</p>
<h2>Tiers on the golden set</h2>
{% if tiers %}
<p class='note'>{{ tiers["n_pairs"] }} golden pairs, {{ tiers["n_queries"] }} queries; intervals resample queries. AUC and nDCG rank the pairs by each tier's score, whatever its thresholds.</p>
<table><tr><th>tier</th><th>predicted</th><th>macro-F1</th>
{%- for label in tiers["labels"] %}<th>F1 {{ label }}</th>{% endfor -%}
<th>Δ macro-F1 vs {{ tiers["reference"] }}</th><th>p</th>
<th>AUC {{ tiers["labels"][0] }} vs rest</th><th>AUC {{ tiers["labels"][-1] }} vs rest</th><th>nDCG@{{ tiers["ndcg_k"] }}</th></tr>
{% for name, row in tiers["tiers"].items() %}
{% set vs = row["vs_reference"] %}
<tr><td>{{ name }}</td><td>{{ row["n_predicted"] }}/{{ row["n_pairs"] }}</td><td>{{ ci(row["macro_f1"]) }}</td>
{%- for label in tiers["labels"] %}<td>{{ ci(row["f1"][label]) }}</td>{% endfor -%}
{% if vs is none %}<td>reference</td><td></td>{% else %}<td>{{ signed(vs) }}</td><td>{{ "%.3g"|format(vs["p_value"]) }}</td>{% endif %}
{%- set free = row.get("threshold_free") %}
{%- if free %}<td>{{ ci(free["auc_vs_rest"][tiers["labels"][0]]) }}</td><td>{{ ci(free["auc_vs_rest"][tiers["labels"][-1]]) }}</td><td>{{ ci(free["ndcg_at_" ~ tiers["ndcg_k"]]) }}</td>
{%- else %}<td>—</td><td>—</td><td>—</td>{% endif %}</tr>
{% endfor %}
</table>
{% else %}{{ missing("evaluate") }}
{% endif %}
<h2>Label noise: the ceiling of any tier</h2>
{% set nc = noise_ceiling %}
{% if nc and nc["available"] %}
<p class='note'>Each golden label is the binned mean of a panel of {{ nc["panel_size"] }} raters, and another panel would not always agree with it. Dirichlet mixtures of each pair's grade probabilities, fitted to the {{ nc["pairs"] }} panel means{% if nc.get("left_out_pairs") %} ({{ nc["left_out_pairs"] }} means of another panel size left out){% endif %}, simulate {{ nc["simulated_pairs"] }} pairs each; a fit is accepted when it reproduces the observed panel means (χ² p ≥ {{ nc["min_fit_p_value"] }}).
{% if nc["accepted"] %}
Over the {{ nc["accepted"] }} accepted fits of {{ nc["fits"]|length }}, a <b>second panel</b> of {{ nc["panel_size"] }} raters scores macro-F1 <b>{{ span(nc["second_panel_macro_f1"]) }}</b> against the golden labels, and an <b>oracle</b> that knows each pair's grade distribution <b>{{ span(nc["oracle_macro_f1"]) }}</b>. A tier near the second panel agrees with the golden set as well as other raters would; none can be expected above the oracle.</p>
{% else %}
No fit reproduces the observed panel means, so no ceiling is stated; every fit is listed.</p>
{% endif %}
<table><tr><th>components</th><th>restart</th><th>accepted</th><th>log-likelihood</th><th>χ² p</th><th>second panel macro-F1</th><th>oracle macro-F1</th>
{%- for label in nc["labels"] %}<th>F1 {{ label }}: panel / oracle</th>{% endfor -%}
</tr>
{% for fit in nc["fits"] %}
<tr><td>{{ fit["components"] }}</td><td>{{ fit["restart"] }}</td><td>{{ "yes" if fit["accepted"] else "no" }}</td><td>{{ "%.1f"|format(fit["log_likelihood"]) }}</td><td>{{ "%.3g"|format(fit["chi_square_p"]) }}</td>
<td>{{ "%.3f"|format(fit["second_panel_macro_f1"]) }}</td><td>{{ "%.3f"|format(fit["oracle_macro_f1"]) }}</td>
{%- for label in nc["labels"] %}<td>{{ "%.3f / %.3f"|format(fit["second_panel_f1"][label], fit["oracle_f1"][label]) }}</td>{% endfor -%}
</tr>
{% endfor %}
</table>
{% elif nc %}<p class='note'>Not available: {{ nc["reason"] }}.</p>
{% else %}{{ missing("golden") }}
{% endif %}
<h2>Training noise</h2>
{% set noise = training_noise %}
{% if noise and noise["experiment"] == experiment %}
{% set seeds = noise["grid"]["training_seed"] %}
<p class='note'>The same run under {{ seeds|length }} training seeds ({{ seeds|join(", ") }}: initialisation, batch order, dropout, bias bagging; the data fixed). A recipe change counts only when it moves a tier by more than this spread. From <code>relevance-kit sweep conf/sweep/training_seeds.yaml</code> at commit {{ noise["commits"]|join(", ") }}.</p>
<table><tr><th>tier</th><th>macro-F1 per seed</th><th>mean ± sd</th><th>range</th><th>Δ vs reference, mean ± sd</th><th>AUC {{ tiers["labels"][0] if tiers else "relevant" }}, mean ± sd</th><th>nDCG, mean ± sd</th></tr>
{% for name, row in noise["tiers"].items() %}
{% set f1 = row["macro_f1"] %}
<tr><td>{{ name }}</td><td>{% for v in f1["values"] %}{{ "%.3f"|format(v) }}{% if not loop.last %}, {% endif %}{% endfor %}</td>
<td>{{ "%.3f ± %.3f"|format(f1["mean"], f1["sd"]) }}</td><td>{{ "%.3f"|format(f1["max"] - f1["min"]) }}</td>
{%- for m in ("diff_vs_reference", "auc_relevant", "ndcg") %}<td>{% if m in row %}{{ "%+.3f ± %.3f"|format(row[m]["mean"], row[m]["sd"]) if m == "diff_vs_reference" else "%.3f ± %.3f"|format(row[m]["mean"], row[m]["sd"]) }}{% else %}—{% endif %}</td>{% endfor -%}
</tr>
{% endfor %}
</table>
{% elif noise %}<p class='note'>Measured for experiment {{ noise["experiment"] }}, not this one: run <code>relevance-kit sweep conf/sweep/training_seeds.yaml</code>.</p>
{% else %}<p class='note'>Not measured yet: run <code>relevance-kit sweep conf/sweep/training_seeds.yaml</code>.</p>
{% endif %}
<h2>Learning curve</h2>
{% if learning_curve %}
{% set tiers_on_curve = learning_curve[0].keys()|reject("equalto", "annotated_queries")|list %}
<p class='note'>Golden macro-F1 of every tier against the annotation budget in queries (nested seeded draws of the annotate split; golden, teacher and unlabeled pools fixed). From <code>relevance-kit sweep conf/sweep/learning_curve.yaml</code>; one training seed per point, so read it against the training noise above.</p>
<table><tr><th>annotated queries</th>{% for tier in tiers_on_curve %}<th>{{ tier }}</th>{% endfor %}</tr>
{% for row in learning_curve %}
<tr><td>{{ row["annotated_queries"] }}</td>{% for tier in tiers_on_curve %}<td>{{ "%.3f"|format(row[tier]) }}</td>{% endfor %}</tr>
{% endfor %}
</table>
{% if learning_curve_png %}{{ figures({"golden macro-F1 vs annotated queries": learning_curve_png}) }}{% endif %}
{% else %}<p class='note'>Not measured yet for this experiment: run <code>relevance-kit sweep conf/sweep/learning_curve.yaml</code>.</p>
{% endif %}
<h2>Transfer to another dataset</h2>
{% if transfer and transfer["target"] %}
{% set t = transfer %}{% set best, worst = t["labels"]|list|first, t["labels"]|list|last %}
<p class='note'>This experiment's tiers ({{ t["source"] }}), unchanged, on the {{ t["target"] }} golden set as its own experiment builds it: {{ t["n_pairs"] }} pairs, {{ t["n_queries"] }} queries. Threshold-free only (thresholds were fitted on {{ t["source"] }}); intervals resample queries. A learned tier below zero-shot MiniLM here lost what its encoder knew.</p>
<table><tr><th>tier</th><th>AUC {{ best }} vs rest</th><th>AUC {{ worst }} vs rest</th><th>nDCG@{{ t["ndcg_k"] }}</th></tr>
{% for name, row in t["tiers"].items() %}
<tr><td>{{ name }}</td><td>{{ ci(row["auc_vs_rest"][best]) }}</td><td>{{ ci(row["auc_vs_rest"][worst]) }}</td><td>{{ ci(row["ndcg_at_" ~ t["ndcg_k"]]) }}</td></tr>
{% endfor %}
</table>
{% elif transfer %}<p class='note'>No transfer target configured: <code>dvc exp run -S transfer=homedepot</code> (or <code>esci_us</code>) scores these tiers on that dataset's golden set.</p>
{% else %}{{ missing("transfer") }}
{% endif %}
<h2>Confusion matrices</h2>
{% if confusion %}{{ figures(confusion, "small") }}{% else %}{{ missing("evaluate") }}{% endif %}

<h2>Search integration</h2>
{% if integration %}
<p class='note'>{{ integration["n_queries"] }} held-out queries; {{ integration["label_source"] }} labels; predicted relevance from the {{ integration["scorer"] }} scorer; unjudged listings: {{ integration["unjudged"] }}. Δ vs {{ integration["control"] }}, paired over queries.</p>
<table><tr><th>arm</th>
{%- for m in metrics %}<th>{{ metric_titles[m] }}@{{ integration["k"] }}</th>{% endfor -%}
{%- for m in metrics %}<th>Δ {{ metric_titles[m] }} [CI]</th><th>p (t / Wilcoxon)</th>{% endfor -%}
</tr>
{% for arm, means in integration["arms"].items() %}
{% set vs = integration["vs_control"].get(arm) %}
<tr><td>{{ arm }}</td>
{%- for m in metrics %}<td>{{ "%.3f"|format(means[m]) }}</td>{% endfor -%}
{%- for m in metrics -%}
{% if vs is none %}<td>reference</td><td></td>{% else %}<td>{{ signed(vs[m], better_when[m]) }}</td><td>{{ "%.3g"|format(vs[m]["p_ttest"]) }} / {{ "%.3g"|format(vs[m]["p_wilcoxon"]) }}</td>{% endif %}
{%- endfor -%}
</tr>
{% endfor %}
</table>
{% if effects_png %}{{ figures({"Δ vs baseline with bootstrap CI": effects_png}) }}{% endif %}
{% else %}{{ missing("integrate") }}
{% endif %}
<h2>Daily monitoring</h2>
{% if monitoring %}
{% set m = monitoring %}
<table><tr><th></th><th>value</th></tr>
{% for key, value in [
  ("watched metric", m["metric"]), ("detector", m["detector"]), ("labelled by", m["tier"]), ("days", m["days"]),
  ("regression injected from", m["regression_from"] or "none"), ("alert days", m["alert_days"]|join(", ") or "none"),
  ("detected", m["detected"]), ("false alarms", m["false_alarms"]),
  ("mean before / after", "%.3f / %.3f"|format(m["mean_before"], m["mean_after"]) if m["mean_after"] is not none else "%.3f"|format(m["mean_before"])),
] %}
<tr><td>{{ key }}</td><td>{{ value }}</td></tr>
{% endfor %}
</table>
{% if series_png %}{{ figures({"daily series": series_png}) }}{% endif %}
{% else %}{{ missing("monitor") }}
{% endif %}
<h2>A/B test from the impression log</h2>
{% if abtest %}
{% set ab = abtest %}
{% set injected = ab.get("injected", {}).get("replaced_share") %}
<p class='note'>{{ ab["label_source"] }} labels; requests sampled per variant; {{ "%.0f"|format(ab["confidence"] * 100) }}% bootstrap intervals, Welch p-values; CUPED on each query's pre-period mean ({{ ab["n_pre_requests"] }} pre-period requests){% if injected %}; injected: share of slots replaced by random listings {{ injected }}{% endif %}.</p>
<table><tr><th>variant</th><th>requests</th>
{%- for m in metrics %}<th>{{ metric_titles[m] }}@{{ ab["k"] }} [CI]</th><th>Δ vs {{ ab["control"] }} [CI]</th><th>p</th><th>CUPED Δ [CI] (var. −)</th><th>n / variant needed</th>{% endfor -%}
</tr>
{% for arm, summary in ab["variants"].items() %}
{% set vs = ab["vs_control"].get(arm) %}
<tr><td>{{ arm }}</td><td>{{ summary["n_requests"] }}</td>
{%- for m in metrics -%}
<td>{{ "%.3f"|format(summary[m]["mean"]) }} <span class='note'>[{{ "%.3f"|format(summary[m]["low"]) }}, {{ "%.3f"|format(summary[m]["high"]) }}]</span></td>
{%- if vs is none %}<td>control</td><td></td><td></td><td></td>
{%- else %}{% set row = vs[m] %}{% set cup = row.get("cuped") %}
<td>{{ signed(row, better_when[m]) }}</td><td>{{ "%.3g"|format(row["p_value"]) }}</td>
<td>{% if cup %}{{ signed(cup, better_when[m]) }} ({{ "%.0f"|format(cup["variance_reduction"] * 100) }}%){% endif %}</td>
<td>{{ row.get("requests_per_variant_needed", "") }}{% if cup and "requests_per_variant_needed" in cup %} ({{ cup["requests_per_variant_needed"] }} CUPED){% endif %}</td>
{%- endif %}
{%- endfor -%}
</tr>
{% endfor %}
</table>
{% else %}{{ missing("abtest") }}
{% endif %}
</body></html>
"""

_ENV = Environment(
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)
_ENV.filters["b64"] = lambda png: base64.b64encode(png).decode()
_PAGE = _ENV.from_string(PAGE)


def render_page(
    *,
    experiment: str,
    tiers: Mapping | None,
    training_noise: Mapping | None,
    confusion: Mapping[str, bytes],
    integration: Mapping | None,
    effects_png: bytes | None,
    monitoring: Mapping | None,
    series_png: bytes | None,
    abtest: Mapping | None = None,
    transfer: Mapping | None = None,
    learning_curve: list[Mapping] | None = None,
    learning_curve_png: bytes | None = None,
    noise_ceiling: Mapping | None = None,
) -> str:
    """The page's HTML; a missing part shows which stage produces it."""
    return _PAGE.render(
        experiment=experiment, tiers=tiers, training_noise=training_noise, confusion=confusion, integration=integration, effects_png=effects_png,
        monitoring=monitoring, series_png=series_png, abtest=abtest, transfer=transfer, learning_curve=learning_curve, learning_curve_png=learning_curve_png, noise_ceiling=noise_ceiling, style=STYLE, metrics=METRICS, metric_titles=METRIC_TITLES,
        better_when=BETTER_WHEN,
    )  # fmt: skip


def read_pngs(folder: Path) -> dict[str, bytes]:
    """Every PNG of a folder by stem (sorted), or nothing when the folder is absent."""
    return {p.stem: p.read_bytes() for p in sorted(folder.glob("*.png"))} if folder.exists() else {}
