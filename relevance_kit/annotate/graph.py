"""The annotator as a LangGraph graph, run once per (query, listing) pair:

    [extract_entities] -> build_prompt -> draw -> parse -+-> vote -> route
                                           ^_____________| (re-ask invalid samples)

`draw` requests every sample still waiting for an answer (N samples, each its own cached
request); `parse` validates them into verdicts; an invalid one is re-asked (the bad answer
and the error go back to the model) up to `annotator.max_reasks` times, then recorded as
invalid with its raw text. `vote` takes the majority with a self-consistency score (the
winning label's share of all N samples) and the configured tie rule; `route` sends pairs
below `annotator.review_below` (or unresolved) to the human review queue.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph

from relevance_kit.annotate.client import Requester, chat_request
from relevance_kit.annotate.verdict import InvalidAnswer, parse_verdict
from relevance_kit.config import AnnotatorConfig, GuidelineVersion, PromptConfig, TaxonomyConfig
from relevance_kit.prompts import Shot, chat_messages, entity_prompt
from relevance_kit.voting import vote, votes_text


class Sample(TypedDict):
    index: int
    answers: list[str]  # raw text of each attempt (first ask, then re-asks)
    verdict: dict[str, str] | None
    error: str | None  # why the latest answer was invalid


class PairState(TypedDict, total=False):
    pair: dict[str, Any]  # query_id, listing_id, query, listing (fields), images
    messages: list[dict[str, Any]]
    samples: list[Sample]
    result: dict[str, Any]


@dataclass(frozen=True)
class Annotator:
    """Everything a graph run needs: config, prompt parts, the few shots and the requester."""

    cfg: AnnotatorConfig
    prompt: PromptConfig
    taxonomy: TaxonomyConfig
    guidelines: GuidelineVersion
    shots: tuple[Shot, ...]
    request: Requester
    seed: int

    @property
    def labels(self) -> list[str]:
        return self.taxonomy.ids


def build_graph(annotator: Annotator) -> Any:
    a = annotator

    async def extract_entities(state: PairState) -> PairState:
        pair = state["pair"]
        messages = [
            {"role": "user", "content": entity_prompt(a.prompt, pair["query"], pair["listing"])}
        ]
        request = chat_request(a.cfg, messages, a.labels, a.seed, json_answer=False)
        answer = await a.request(request, sample=0)
        entities = _entities(answer.text)
        return (
            {"pair": {**pair, "listing": {**pair["listing"], "entities": entities}}}
            if entities
            else {}
        )

    async def build_prompt(state: PairState) -> PairState:
        pair = state["pair"]
        images = pair.get("images", ()) if a.cfg.sees_images else ()
        messages = chat_messages(
            a.prompt, a.taxonomy, a.guidelines, pair["query"], pair["listing"], a.shots, images
        )
        samples = [
            Sample(index=i, answers=[], verdict=None, error=None) for i in range(a.cfg.samples)
        ]
        return {"messages": messages, "samples": samples}

    async def draw(state: PairState) -> PairState:
        async def one(sample: Sample) -> Sample:
            if not _waiting(sample):
                return sample
            messages = list(state["messages"])
            if sample["answers"]:  # a re-ask: show the model its answer and what was wrong
                reask = a.prompt.reask.format(error=sample["error"], label_ids=", ".join(a.labels))
                messages += [
                    {"role": "assistant", "content": sample["answers"][-1]},
                    {"role": "user", "content": reask},
                ]
            request = chat_request(a.cfg, messages, a.labels, a.seed * 1000 + sample["index"])
            answer = await a.request(request, sample=sample["index"])
            return {**sample, "answers": [*sample["answers"], answer.text], "error": None}

        return {"samples": list(await asyncio.gather(*(one(s) for s in state["samples"])))}

    async def parse(state: PairState) -> PairState:
        samples = []
        for sample in state["samples"]:
            if sample["verdict"] is None and sample["error"] is None:
                try:
                    sample = {
                        **sample,
                        "verdict": parse_verdict(sample["answers"][-1], a.labels).model_dump(),
                    }
                except InvalidAnswer as exc:
                    sample = {**sample, "error": str(exc)}
            samples.append(sample)
        return {"samples": samples}

    def reask_or_vote(state: PairState) -> str:
        can_retry = any(_waiting(s) for s in state["samples"])
        return "draw" if can_retry else "vote"

    def _waiting(sample: Sample) -> bool:
        """No verdict yet, and asks left (first ask + max_reasks re-asks)."""
        return sample["verdict"] is None and len(sample["answers"]) <= a.cfg.max_reasks

    async def vote(state: PairState) -> PairState:
        return {
            "result": {
                **_key(state["pair"]),
                **majority(state["samples"], a.labels, a.cfg.tie_break),
            }
        }

    async def route(state: PairState) -> PairState:
        result = state["result"]
        review = result["label"] is None or result["self_consistency"] < a.cfg.review_below
        return {"result": {**result, "route": "review" if review else "accept"}}

    graph = StateGraph(PairState)
    for node in (extract_entities, build_prompt, draw, parse, vote, route):
        graph.add_node(node.__name__, node)
    graph.add_edge(START, "extract_entities" if a.cfg.extract_entities else "build_prompt")
    graph.add_edge("extract_entities", "build_prompt")
    graph.add_edge("build_prompt", "draw")
    graph.add_edge("draw", "parse")
    graph.add_conditional_edges("parse", reask_or_vote, {"draw": "draw", "vote": "vote"})
    graph.add_edge("vote", "route")
    graph.add_edge("route", END)
    return graph.compile()


def majority(samples: list[Sample], labels: list[str], tie_break: str) -> dict[str, Any]:
    """Plurality label (ties by `tie_break`, see `relevance_kit.voting`), self-consistency
    (its votes' share of ALL samples, so invalid answers lower it) and vote shares among
    valid answers."""
    verdicts = [s["verdict"] for s in samples if s["verdict"] is not None]
    counts = Counter(v["label"] for v in verdicts)
    won = vote(counts, labels, tie_break)
    invalid = [s["answers"][-1] if s["answers"] else "" for s in samples if s["verdict"] is None]
    return {
        "label": won.label,
        "rationale": next((v["rationale"] for v in verdicts if v["label"] == won.label), None),
        "self_consistency": won.top / len(samples) if samples else 0.0,
        "tie": len(won.tied) > 1,
        "votes": votes_text(counts, labels),
        "shares": {
            lab: counts[lab] / len(verdicts) if verdicts else float("nan") for lab in labels
        },
        "n_samples": len(samples),
        "n_invalid": len(invalid),
        "invalid_answers": json.dumps(invalid, ensure_ascii=False) if invalid else None,
    }


def _key(pair: dict[str, Any]) -> dict[str, str]:
    return {"query_id": pair["query_id"], "listing_id": pair["listing_id"]}


def _entities(text: str) -> list[tuple[str, str]]:
    """Flatten {"query": {...}, "listing": {...}} into (name, value) pairs; unreadable -> none
    (entities only add context, so a bad extraction is skipped, not fatal)."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return []
    if not isinstance(obj, dict):
        return []
    pairs = []
    for side, values in obj.items():
        if isinstance(values, dict):
            pairs += [(f"{side} {k}", str(v)) for k, v in values.items() if v not in (None, "", [])]
    return pairs
