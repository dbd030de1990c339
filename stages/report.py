"""DVC stage `report`: the one page of the whole cascade, reports/index.html (tier table,
training noise, confusion matrices, integration effects, monitoring series, A/B test),
self-contained HTML."""

import json
from pathlib import Path

from relevance_kit.config import RelevanceConfig
from relevance_kit.io import write_text
from relevance_kit.report_html import read_pngs, render_page
from relevance_kit.stage import run_stage


def _json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _png(path: Path) -> bytes | None:
    return path.read_bytes() if path.exists() else None


def main(cfg: RelevanceConfig) -> None:
    metrics, plots = Path(cfg.paths.metrics), Path(cfg.paths.plots)
    page = render_page(
        experiment=cfg.experiment,
        tiers=_json(metrics / "tiers.json"),
        training_noise=_json(metrics / "sweeps" / "training_seeds.json"),
        confusion=read_pngs(plots / "confusion"),
        integration=_json(metrics / "integration.json"),
        effects_png=_png(plots / "integration" / "effects.png"),
        monitoring=_json(metrics / "monitoring.json"),
        series_png=_png(plots / "monitoring" / "series.png"),
        abtest=_json(metrics / "abtest.json"),
    )
    write_text(page, Path(cfg.paths.reports) / "index.html")
    print(f"wrote {Path(cfg.paths.reports) / 'index.html'}")


if __name__ == "__main__":
    run_stage(main)
