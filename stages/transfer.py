"""DVC stage `transfer`: this experiment's tiers scored threshold-free on another dataset's
golden set (`transfer=<dataset>`), beside BM25 and zero-shot MiniLM on the same pairs."""

from pathlib import Path

from relevance_kit.config import RelevanceConfig
from relevance_kit.evaluation.transfer import render_transfer_markdown, transfer_table
from relevance_kit.io import write_json, write_text
from relevance_kit.stage import run_stage


def main(cfg: RelevanceConfig) -> None:
    table = (
        transfer_table(cfg)
        if cfg.transfer.enabled
        else {"source": cfg.data.name, "target": None, "tiers": {}}
    )
    write_json(table, Path(cfg.paths.metrics) / "transfer.json")
    markdown = render_transfer_markdown(table)
    write_text(markdown, Path(cfg.paths.reports) / "transfer.md")
    print(markdown)


if __name__ == "__main__":
    run_stage(main)
