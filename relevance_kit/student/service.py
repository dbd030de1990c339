"""HTTP service for the student: POST /score, GET /healthz.

Start (one command; limits, host and port default to the export's manifest):
    python -m relevance_kit.student.service --export-dir models/student/minilm_two_tower/export
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from relevance_kit.errors import RelevanceKitError
from relevance_kit.student.scorer import RelevanceScorer


class ScoreRequest(BaseModel):
    query: str
    listing_ids: list[str] = Field(min_length=1)


class ScoreResponse(BaseModel):
    """Column-oriented, one entry per requested id in request order: `probabilities[i]` is in
    `labels` order. (One object per listing cost ~10x the scoring itself at 1,000 ids.)"""

    model: str
    version: str
    labels: list[str]
    listing_ids: list[str]
    predicted: list[str]
    probabilities: list[list[float]]


def create_app(scorer: RelevanceScorer, max_listing_ids: int, max_query_chars: int) -> FastAPI:
    """The app over one loaded scorer; request limits are checked before any scoring."""
    app = FastAPI(title="relevance-kit student", version=scorer.version)

    @app.get("/healthz")
    def healthz() -> dict:
        return {
            "status": "ok",
            "model": scorer.name,
            "version": scorer.version,
            "listings": len(scorer.row),
        }

    @app.post("/score", response_model=ScoreResponse)
    def score(request: ScoreRequest) -> ScoreResponse:
        if not request.query.strip():
            raise HTTPException(422, "query is empty")
        if len(request.query) > max_query_chars:
            raise HTTPException(
                422, f"query has {len(request.query)} characters; the limit is {max_query_chars}"
            )
        if len(request.listing_ids) > max_listing_ids:
            raise HTTPException(
                422,
                f"{len(request.listing_ids)} listing ids; the limit is {max_listing_ids} per request",
            )
        _require_unicode(request)
        unknown = scorer.unknown_ids(request.listing_ids)
        if unknown:
            raise HTTPException(
                404,
                f"{len(unknown)} unknown listing id(s) (model {scorer.version}): {unknown[:10]}",
            )
        try:
            probs = scorer.score(request.query, request.listing_ids)
        except RelevanceKitError as exc:
            raise HTTPException(422, str(exc)) from None
        labels = scorer.labels
        return ScoreResponse(
            model=scorer.name,
            version=scorer.version,
            labels=labels,
            listing_ids=request.listing_ids,
            predicted=[labels[i] for i in probs.argmax(axis=1).tolist()],
            probabilities=probs.tolist(),
        )

    return app


def _require_unicode(request: ScoreRequest) -> None:
    """JSON escapes can carry lone surrogates (`"\\ud83d"`), which no tokenizer (nor UTF-8)
    takes: refuse them with the text named (escaped, so the answer itself encodes)."""
    for field, text in [("query", request.query), *(("listing_ids", i) for i in request.listing_ids)]:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise HTTPException(
                422, f"{field} {text!a} is not valid Unicode: lone surrogate {text[exc.start]!a} at position {exc.start}"
            ) from None


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(
        prog="python -m relevance_kit.student.service", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--export-dir", required=True, type=Path)
    parser.add_argument(
        "--variant",
        choices=["fp32", "int8"],
        default=None,
        help="query encoder (default: the manifest's)",
    )
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    args = parser.parse_args(argv)
    try:
        scorer = RelevanceScorer.load(args.export_dir, args.variant)
    except RelevanceKitError as exc:
        parser.exit(2, f"error: {exc}\n")
    limits = scorer.manifest["service"]
    torch.set_num_threads(limits["threads"])
    app = create_app(scorer, limits["max_listing_ids"], limits["max_query_chars"])
    uvicorn.run(
        app, host=args.host or limits["host"], port=args.port or limits["port"], log_level="warning"
    )


if __name__ == "__main__":
    main()
