"""HTTP service for the student: POST /score, POST /index/reload, GET /healthz.

Start (one command; limits, host and port default to the export's manifest):
    python -m relevance_kit.student.service --export-dir models/student/minilm_two_tower/export

After `relevance-kit index` has refreshed the index file, POST /index/reload swaps the new
index in: requests in flight finish on the old one, later ones see the new one, none fails.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import orjson
from fastapi import FastAPI, HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from threadpoolctl import threadpool_limits

from relevance_kit.errors import RelevanceKitError
from relevance_kit.student.index import UnknownListings
from relevance_kit.student.scorer import RelevanceScorer, read_manifest
from relevance_kit.text import listing_text


class TextListing(BaseModel):
    """A listing not in the index, given by its fields (title, brand, ...: the export's
    listing_fields), embedded on the fly exactly as the index would embed it."""

    model_config = ConfigDict(extra="allow")
    listing_id: str


class ScoreRequest(BaseModel):
    query: str
    listing_ids: list[str] = Field(default_factory=list)
    listings: list[TextListing] = Field(default_factory=list)


class ScoreResponse(BaseModel):
    """Column-oriented, one entry per listing in request order (listing_ids, then listings):
    `probabilities[i]` is in `labels` order. (One object per listing cost ~10x the scoring
    itself at 1,000 ids.)"""

    model: str
    version: str
    labels: list[str]
    listing_ids: list[str]
    predicted: list[str]
    probabilities: list[list[float]]


@dataclass(frozen=True)
class Limits:
    """Request bounds, checked before any scoring (defaults: the manifest's `service`)."""

    max_listing_ids: int
    max_query_chars: int
    max_text_listings: int = 0  # listings given as text per request; 0: not accepted
    max_listing_text_chars: int = 0

    @classmethod
    def from_manifest(cls, service: dict) -> Limits:
        return cls(**{k: service[k] for k in cls.__dataclass_fields__ if k in service})


def check_request(request: ScoreRequest, limits: Limits) -> None:
    """Raise a 422 naming the first bound the request breaks."""
    if not request.query.strip():
        raise HTTPException(422, "query is empty")
    if len(request.query) > limits.max_query_chars:
        raise HTTPException(
            422, f"query has {len(request.query)} characters; the limit is {limits.max_query_chars}"
        )
    if len(request.listing_ids) > limits.max_listing_ids:
        raise HTTPException(
            422,
            f"{len(request.listing_ids)} listing ids; the limit is {limits.max_listing_ids} per request",
        )
    if not request.listing_ids and not request.listings:
        raise HTTPException(422, "listing_ids and listings are both empty: give at least 1 listing")
    if len(request.listings) > limits.max_text_listings:
        raise HTTPException(
            422,
            f"{len(request.listings)} listings given as text; the limit is "
            f"{limits.max_text_listings} per request",
        )
    _require_unicode(request)


def listing_texts(listings: list[TextListing], fields: list[str], max_chars: int) -> list[str]:
    """The tower text of each listing given as text; 422 for an empty or over-long one."""
    texts = []
    for i, listing in enumerate(listings):
        text = listing_text(listing.model_dump(), fields)
        if not text:
            raise HTTPException(
                422, f"listings[{i}] ({listing.listing_id!r}): empty text; give one of {fields}"
            )
        if len(text) > max_chars:
            raise HTTPException(
                422,
                f"listings[{i}] ({listing.listing_id!r}): text has {len(text)} characters; "
                f"the limit is {max_chars}",
            )
        texts.append(text)
    return texts


def create_app(
    scorer: RelevanceScorer,
    max_listing_ids: int,
    max_query_chars: int,
    max_text_listings: int = 0,
    max_listing_text_chars: int = 0,
) -> FastAPI:
    """The app over one loaded scorer. /score runs on the event loop (a thread hop per
    request cost more than the head); the response is written by orjson from the array."""
    app = FastAPI(title="relevance-kit student", version=scorer.version)
    limits = Limits(max_listing_ids, max_query_chars, max_text_listings, max_listing_text_chars)
    fields = list(scorer.manifest["listing_fields"])

    @app.get("/healthz")
    def healthz() -> dict:
        return {
            "status": "ok",
            "model": scorer.name,
            "version": scorer.version,
            "listings": len(scorer.index),
        }

    @app.post("/score", response_model=ScoreResponse)
    async def score(request: ScoreRequest) -> Response:
        check_request(request, limits)
        texts = listing_texts(request.listings, fields, limits.max_listing_text_chars)
        try:
            probs = scorer.score(request.query, request.listing_ids, texts)
        except UnknownListings as exc:
            raise HTTPException(
                404,
                f"{len(exc.ids)} unknown listing id(s) (model {scorer.version}): {exc.ids[:10]}",
            ) from None
        except RelevanceKitError as exc:
            raise HTTPException(422, str(exc)) from None
        labels = scorer.labels
        body = {
            "model": scorer.name,
            "version": scorer.version,
            "labels": labels,
            "listing_ids": request.listing_ids
            + [listing.listing_id for listing in request.listings],
            "predicted": [labels[i] for i in probs.argmax(axis=1).tolist()],
            "probabilities": probs,
        }
        return Response(
            orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json"
        )

    @app.post("/index/reload")
    async def reload_index() -> dict:
        """Re-read the index file (refused when from another model version) and swap it in;
        loading runs in a worker thread, so scoring goes on meanwhile."""
        try:
            before, after = await run_in_threadpool(scorer.swap_index)
        except RelevanceKitError as exc:
            raise HTTPException(409, str(exc)) from None
        return {"version": scorer.version, "listings_before": before, "listings": after}

    return app


def _require_unicode(request: ScoreRequest) -> None:
    """JSON escapes can carry lone surrogates (`"\\ud83d"`), which no tokenizer (nor UTF-8)
    takes: refuse them with the text named (escaped, so the answer itself encodes)."""
    for field, text in [
        ("query", request.query),
        *(("listing_ids", i) for i in request.listing_ids),
    ]:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise HTTPException(
                422,
                f"{field} {text!a} is not valid Unicode: lone surrogate {text[exc.start]!a} at position {exc.start}",
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
        service = read_manifest(args.export_dir)["service"]
        limits = Limits.from_manifest(service)
        scorer = RelevanceScorer.load(
            args.export_dir,
            args.variant,
            threads=service["threads"],
            query_cache=service.get("query_cache", 0),  # exports from before it: no cache
            text_listings=limits.max_text_listings > 0,
        )
    except RelevanceKitError as exc:
        parser.exit(2, f"error: {exc}\n")
    threadpool_limits(service["threads"])  # the head's BLAS products
    app = create_app(scorer, **vars(limits))
    uvicorn.run(
        app,
        host=args.host or service["host"],
        port=args.port or service["port"],
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
