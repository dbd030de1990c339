"""The relevance head as plain NumPy matrix products over precomputed listing parts.

z = W_l v (precomputed in the index) + (W_q u + b) + v (W_p diag u)^T + |v - u| W_a^T, then
the rest of the MLP. Per request that is two (n, dim) x (dim, hidden) products and a
(n, hidden) x (hidden, K) one: no autograd, no dispatcher, no per-request tensor wrapping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from relevance_kit.student.towers import RelevanceHead


def _np(t) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)


@dataclass(frozen=True)
class ServingHead:
    bias: np.ndarray  # (hidden,)
    blocks_t: dict[str, np.ndarray]  # feature -> (dim, hidden): the first layer, transposed
    layers: list[tuple[np.ndarray, np.ndarray]]  # the rest: (W^T, b) per Linear, ReLU between

    @classmethod
    def from_head(cls, head: RelevanceHead) -> ServingHead:
        parts = head.parts()
        linears = [m for m in parts.rest if isinstance(m, nn.Linear)]
        return cls(
            _np(parts.bias),
            {name: _np(w.T) for name, w in parts.blocks.items()},
            [(_np(m.weight.T), _np(m.bias)) for m in linears],
        )

    def listing_part(self, v: np.ndarray) -> np.ndarray:
        """W_l v for listing vectors (n, dim): what the index stores per listing."""
        w = self.blocks_t.get("listing")
        return v @ w if w is not None else np.zeros((len(v), len(self.bias)), np.float32)

    def probabilities(self, u: np.ndarray, v: np.ndarray, listing_part: np.ndarray) -> np.ndarray:
        """Softmax over the labels for one query vector u (dim,) and n candidates."""
        b = self.blocks_t
        z = listing_part + (self.bias + u @ b["query"] if "query" in b else self.bias)
        if "product" in b:
            z += v @ (b["product"] * u[:, None])
        if "abs_diff" in b:
            z += np.abs(v - u) @ b["abs_diff"]
        for w, bias in self.layers:
            np.maximum(z, 0.0, out=z)
            z = z @ w
            z += bias
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z
