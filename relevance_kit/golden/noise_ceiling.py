"""The label-noise ceiling: how much macro-F1 the golden labels themselves allow, when each is
the binned mean of a small panel of raters (Home Depot: three raters grading 1-3).

A tier is scored against one panel's verdict, and a second panel of the same size would not
agree with it on every pair; that is the part of a macro-F1 figure that is noise, not model.
The individual grades are not in the data, only each panel's mean, so each pair's per-rater
grade probabilities are modelled as drawn from a mixture of Dirichlets, fitted by maximum
likelihood of the observed panel means (Dirichlet-multinomial). From each fit, simulated pairs
give two independent panels and two figures against panel A's golden label:

- second panel: panel B's label (what another panel of raters would score);
- oracle: the label panel A most likely gives, from the pair's true grade distribution (what
  a tier that knew each pair perfectly, but not panel A's draw, would score).

The panel means fix at most size*(grades-1) numbers, so mixtures of more components are not
identified: fits from several sizes and seeded starts that all reproduce the observed means
(chi-square check) give different ceilings, and their range is the answer.

| input | from | used for |
| --- | --- | --- |
| judgments `grade` | prepare's judgments.parquet | one panel mean per row, every judged pair |
| `data.rating_bins` | params | grades (whole numbers over `range`), `panel_size`, the bins |
| `data.source_scheme`, `taxonomy` | params | bins -> taxonomy labels; macro-F1 over all of them |
| `golden.noise_ceiling` | params | mixture sizes, restarts, simulated pairs, acceptance p |
| `seed` | params | the fits' random starts and the simulations |

Every judged pair, not only the golden ones: the golden set is a sample of them with the same
label shares (Home Depot: 2,503 of 74,008 pairs), and 30 times the pairs keep one sample's
histogram from moving the fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import combinations_with_replacement
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import gammaln, softmax, xlogy
from scipy.stats import chi2

from relevance_kit.errors import DataError
from relevance_kit.evaluation.metrics import macro_f1, per_class_f1

if TYPE_CHECKING:
    from relevance_kit.config import RelevanceConfig
    from relevance_kit.data.spec import RatingBins

# 1e-4: a pair's raters all but always agree; 1e4: every pair has the same grade probabilities.
LOG_ALPHA_BOUNDS = (np.log(1e-4), np.log(1e4))
LOGIT_BOUNDS = (-10.0, 10.0)
# Panel means are stored rounded (Home Depot: 1.33, 2.67); size * mean must be this close to
# a whole number, which tells a 3-rater mean from a 4-rater one (1.25, 1.5, 1.75).
LATTICE_TOLERANCE = 0.1


@dataclass(frozen=True)
class Panel:
    """`size` raters, each giving one whole grade from `low` to `high`."""

    low: int
    high: int
    size: int

    @property
    def n_grades(self) -> int:
        return self.high - self.low + 1

    @cached_property
    def counts(self) -> np.ndarray:
        """Every way the panel's grades can fall: (ways, grades) counts of raters per grade."""
        ways = combinations_with_replacement(range(self.n_grades), self.size)
        return np.array([np.bincount(w, minlength=self.n_grades) for w in ways])

    @cached_property
    def sums(self) -> np.ndarray:
        """Each way's sum of grades above the lowest: 0 .. size*(grades-1)."""
        return self.counts @ np.arange(self.n_grades)

    @property
    def n_sums(self) -> int:
        return self.size * (self.n_grades - 1) + 1

    def log_coefficients(self) -> np.ndarray:
        """log multinomial coefficient of each way."""
        return gammaln(self.size + 1) - gammaln(self.counts + 1).sum(axis=1)


@dataclass(frozen=True)
class DirichletMixture:
    """Each pair's grade probabilities: component c (probability weights[c]) draws them from
    Dirichlet(alphas[c])."""

    weights: np.ndarray  # (components,)
    alphas: np.ndarray  # (components, grades)

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, grades) grade probabilities of n pairs."""
        component = rng.choice(len(self.weights), size=n, p=self.weights)
        out = np.empty((n, self.alphas.shape[1]))
        for c, alpha in enumerate(self.alphas):
            chosen = component == c
            out[chosen] = rng.dirichlet(alpha, size=int(chosen.sum()))
        return out

    def sum_probabilities(self, panel: Panel) -> np.ndarray:
        """P(panel sum = s) for s in 0 .. panel.n_sums-1, under the Dirichlet-multinomial."""
        a = self.alphas[:, None, :]  # (components, 1, grades)
        total = self.alphas.sum(axis=1)[:, None]
        log_way = (
            panel.log_coefficients()[None, :]
            + gammaln(total)
            - gammaln(panel.size + total)
            + (gammaln(panel.counts[None] + a) - gammaln(a)).sum(axis=2)
        )  # (components, ways)
        per_way = self.weights @ np.exp(log_way)
        return np.bincount(panel.sums, weights=per_way, minlength=panel.n_sums)


@dataclass(frozen=True)
class MixtureFit:
    mixture: DirichletMixture
    restart: int
    log_likelihood: float
    chi_square_p: float  # the observed sums as a draw from the fit (df = sums - 1)
    total_variation: float  # between observed and fitted distributions of panel means


def panel_sums(
    means: Sequence[float] | np.ndarray, panel: Panel, rows: Sequence[object] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each panel mean as its sum of grades above the lowest, and whether it is a mean of
    `panel.size` grades at all (a mean of another panel size is not: it is left out and
    counted, never modelled as this one). A missing mean or one outside the grades is a
    DataError naming its row (`rows[i]`, else its position); so is a panel size that fits
    fewer than half of the means."""
    means = np.asarray(means, dtype=np.float64)
    bad = np.isnan(means) | (means < panel.low) | (means > panel.high)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        row = rows[i] if rows is not None else f"row {i}"
        raise DataError(
            f"panel mean {means[i]:g} of {row} is missing or outside the grade range "
            f"[{panel.low}, {panel.high}] ({int(bad.sum())} such row(s)); check data.rating_bins.range"
        )
    scaled = (means - panel.low) * panel.size
    sums = np.rint(scaled).astype(np.int64)
    on_lattice = np.abs(scaled - sums) <= LATTICE_TOLERANCE
    if on_lattice.mean() < 0.5:
        raise DataError(
            f"only {int(on_lattice.sum())} of {len(means)} panel means are means of "
            f"{panel.size} whole grades: is data.rating_bins.panel_size right?"
        )
    return sums, on_lattice


def fit_mixture(
    sums: np.ndarray, panel: Panel, components: int, restarts: int, seed: int
) -> list[MixtureFit]:
    """One maximum-likelihood fit of a `components`-Dirichlet mixture to the observed panel
    sums per restart, each from its own seeded random start (L-BFGS-B on log alphas and
    weight logits)."""
    observed = np.bincount(sums, minlength=panel.n_sums)
    n_alpha = components * panel.n_grades

    def unpack(theta: np.ndarray) -> DirichletMixture:
        alphas = np.exp(theta[:n_alpha]).reshape(components, panel.n_grades)
        return DirichletMixture(softmax(theta[n_alpha:]), alphas)

    def loss(theta: np.ndarray) -> float:
        probs = unpack(theta).sum_probabilities(panel)
        return -float(xlogy(observed, probs).sum()) / observed.sum()

    bounds = [LOG_ALPHA_BOUNDS] * n_alpha + [LOGIT_BOUNDS] * components
    rng = np.random.default_rng([seed, components])
    fits = []
    for restart in range(restarts):
        start = np.concatenate(
            [rng.uniform(np.log(0.2), np.log(5.0), n_alpha), rng.normal(0.0, 1.0, components)]
        )
        theta = minimize(loss, start, method="L-BFGS-B", bounds=bounds).x
        fits.append(_assess(unpack(theta), restart, observed, panel))
    return fits


def _assess(
    mixture: DirichletMixture, restart: int, observed: np.ndarray, panel: Panel
) -> MixtureFit:
    probs = mixture.sum_probabilities(panel)
    n = observed.sum()
    expected = n * probs
    chi_square = float(((observed - expected) ** 2 / expected).sum())
    return MixtureFit(
        mixture=mixture,
        restart=restart,
        log_likelihood=float(xlogy(observed, probs).sum()),
        chi_square_p=float(chi2.sf(chi_square, df=panel.n_sums - 1)),
        total_variation=float(0.5 * np.abs(observed / n - probs).sum()),
    )


def simulate(
    mixture: DirichletMixture,
    panel: Panel,
    sum_labels: np.ndarray,
    labels: Sequence[str],
    n_pairs: int,
    seed: int | Sequence[int],
) -> dict[str, Any]:
    """Macro-F1 and per-class F1 (taxonomy order) of a second panel and of the oracle against
    panel A on `n_pairs` simulated pairs; `sum_labels[s]` is the label index of panel sum s."""
    rng = np.random.default_rng(seed)
    probs = mixture.draw(n_pairs, rng)
    grade_steps = np.arange(panel.n_grades)
    panel_a = sum_labels[rng.multinomial(panel.size, probs) @ grade_steps]
    panel_b = sum_labels[rng.multinomial(panel.size, probs) @ grade_steps]
    log_way = panel.log_coefficients() + xlogy(panel.counts[None], probs[:, None, :]).sum(axis=2)
    label_probs = np.exp(log_way) @ np.eye(len(labels))[sum_labels[panel.sums]]
    oracle = label_probs.argmax(axis=1)
    out: dict[str, Any] = {}
    for name, predicted in (("second_panel", panel_b), ("oracle", oracle)):
        cm = _confusion(panel_a, predicted, len(labels))
        out[f"{name}_macro_f1"] = float(macro_f1(cm))
        out[f"{name}_f1"] = dict(zip(labels, per_class_f1(cm).tolist()))
    return out


def _confusion(truth: np.ndarray, predicted: np.ndarray, k: int) -> np.ndarray:
    """(k, k+1) counts as relevance_kit.evaluation.metrics takes them (last column: none)."""
    cm = np.bincount(truth * (k + 1) + predicted, minlength=k * (k + 1))
    return cm.reshape(k, k + 1).astype(np.float64)


def sum_to_label(
    panel: Panel, bins: RatingBins, source_map: dict[str, str], labels: Sequence[str]
) -> np.ndarray:
    """The taxonomy label index of each panel sum: its mean binned as prepare bins it
    (`RatingBins.source_of`; the tolerance keeps a mean like 2.5 from a float's rounding)."""
    means = panel.low + np.arange(panel.n_sums) / panel.size
    source = [bins.source_of(m + 1e-9) for m in means]
    return np.array([list(labels).index(source_map[s]) for s in source])


def noise_ceiling(
    sums: np.ndarray,
    panel: Panel,
    sum_labels: np.ndarray,
    labels: Sequence[str],
    *,
    mixtures: Sequence[int],
    restarts: int,
    simulated_pairs: int,
    min_fit_p_value: float,
    seed: int,
) -> dict[str, Any]:
    """Every fit (mixture size x restart) with its simulated figures, and the range of each
    figure over the accepted fits (null when none is accepted)."""
    rows = []
    for components in mixtures:
        for fit in fit_mixture(sums, panel, components, restarts, seed):
            figures = simulate(
                fit.mixture,
                panel,
                sum_labels,
                labels,
                simulated_pairs,
                [seed, components, fit.restart],
            )
            rows.append(
                {
                    "components": components,
                    "restart": fit.restart,
                    "accepted": fit.chi_square_p >= min_fit_p_value,
                    "log_likelihood": fit.log_likelihood,
                    "chi_square_p": fit.chi_square_p,
                    "total_variation": fit.total_variation,
                    "weights": fit.mixture.weights.tolist(),
                    "alphas": fit.mixture.alphas.tolist(),
                    **figures,
                }
            )
    accepted = [r for r in rows if r["accepted"]]
    observed = np.bincount(sums, minlength=panel.n_sums)
    return {
        "available": True,
        "labels": list(labels),
        "panel_size": panel.size,
        "pairs": len(sums),
        "panel_means": {
            f"{panel.low + s / panel.size:.2f}": int(c) for s, c in enumerate(observed)
        },
        "simulated_pairs": simulated_pairs,
        "min_fit_p_value": min_fit_p_value,
        "fits": rows,
        "accepted": len(accepted),
        **{
            f"{figure}_macro_f1": _range([r[f"{figure}_macro_f1"] for r in accepted])
            for figure in ("second_panel", "oracle")
        },
    }


def _range(values: list[float]) -> dict[str, float] | None:
    return {"min": min(values), "max": max(values)} if values else None


def measure(cfg: RelevanceConfig, judgments: pd.DataFrame) -> dict[str, Any]:
    """metrics/noise_ceiling.json from the dataset's judgments (one panel mean per row in
    `grade`), or {"available": false, "reason"} where the data or config has no such panel."""
    bins, settings = cfg.data.rating_bins, cfg.golden.noise_ceiling
    if settings is None:
        return _unavailable("golden.noise_ceiling is null (not measured)")
    if bins is None:
        return _unavailable(
            f"the {cfg.data.name} data has categorical labels (data.rating_bins is null), "
            "not means of a panel's numeric grades, so its label noise cannot be modelled"
        )
    low, high = bins.range
    if not (float(low).is_integer() and float(high).is_integer()):
        return _unavailable(f"data.rating_bins.range {list(bins.range)} is not whole grades")
    panel = Panel(int(low), int(high), bins.panel_size)
    rows = [f"pair ({q}, {li})" for q, li in zip(judgments["query_id"], judgments["listing_id"])]
    sums, on_lattice = panel_sums(judgments["grade"].to_numpy(np.float64), panel, rows)
    labels = cfg.taxonomy.ids
    sum_labels = sum_to_label(
        panel,
        bins,
        cfg.taxonomy.source_maps[cfg.data.source_scheme],
        labels,
    )
    report = noise_ceiling(
        sums[on_lattice],
        panel,
        sum_labels,
        labels,
        mixtures=settings.mixtures,
        restarts=settings.restarts,
        simulated_pairs=settings.simulated_pairs,
        min_fit_p_value=settings.min_fit_p_value,
        seed=cfg.seed,
    )
    return {**report, "left_out_pairs": int((~on_lattice).sum())}


def _unavailable(reason: str) -> dict[str, Any]:
    return {"available": False, "reason": reason}
