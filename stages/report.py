"""DVC stage `report`: the one page of the whole cascade, reports/index.html (tier table,
label-noise ceiling, training noise, learning curve, transfer to another dataset, confusion
matrices, integration effects, monitoring series, A/B test), self-contained HTML."""

import json
from pathlib import Path

import pandas as pd

from relevance_kit.config import RelevanceConfig
from relevance_kit.evaluation.learning_curve import X, curve_rows, plot_curve
from relevance_kit.io import write_csv, write_text
from relevance_kit.report_html import read_pngs, render_page
from relevance_kit.stage import run_stage


def _json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _png(path: Path) -> bytes | None:
    return path.read_bytes() if path.exists() else None


def learning_curve(cfg: RelevanceConfig, metrics: Path, out: Path) -> pd.DataFrame | None:
    """The learning-curve sweep of this experiment as rows, a CSV (`dvc plots show`) and a
    PNG under `out`; None (and a CSV of no rows) when it has not been run for it."""
    sweep = _json(metrics / "sweeps" / "learning_curve.json")
    if sweep is None or sweep["experiment"] != cfg.experiment:
        write_csv(pd.DataFrame(columns=[X]), out / "learning_curve.csv")
        (out / "learning_curve.png").unlink(missing_ok=True)
        return None
    sampling = _json(metrics / "sampling.json")
    rows = curve_rows(sweep, sampling["splits"]["annotate"]["queries"])
    write_csv(rows, out / "learning_curve.csv")
    plot_curve(rows, out / "learning_curve.png")
    return rows


def main(cfg: RelevanceConfig) -> None:
    metrics, plots = Path(cfg.paths.metrics), Path(cfg.paths.plots)
    curve = learning_curve(cfg, metrics, plots / "learning_curve")
    page = render_page(
        experiment=cfg.experiment,
        tiers=_json(metrics / "tiers.json"),
        noise_ceiling=_json(metrics / "noise_ceiling.json"),
        training_noise=_json(metrics / "sweeps" / "training_seeds.json"),
        learning_curve=None if curve is None else curve.to_dict("records"),
        learning_curve_png=_png(plots / "learning_curve" / "learning_curve.png"),
        confusion=read_pngs(plots / "confusion"),
        integration=_json(metrics / "integration.json"),
        effects_png=_png(plots / "integration" / "effects.png"),
        monitoring=_json(metrics / "monitoring.json"),
        series_png=_png(plots / "monitoring" / "series.png"),
        abtest=_json(metrics / "abtest.json"),
        transfer=_json(metrics / "transfer.json"),
    )
    write_text(page, Path(cfg.paths.reports) / "index.html")
    print(f"wrote {Path(cfg.paths.reports) / 'index.html'}")


if __name__ == "__main__":
    run_stage(main)
