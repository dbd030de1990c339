"""The relevance head as plain NumPy matrix products, the first layer folded per query.

The first layer is z = W_q u + W_l v + W_p (u * v) + W_a |u - v| + b. For one query u the
listing and product blocks are one matrix, A(u) = W_l^T + diag(u) W_p^T (dim x hidden, built
per request: dim x hidden multiply-adds), so per request it is

    z = v A(u) + |v - u| W_a^T + (W_q u + b)

two (n, dim) x (dim, hidden) products, then the rest of the MLP ((n, hidden) x (hidden, K)),
plus, with the similarity skip, (v u) w + c (one (n, dim) x (dim,) product).
That needs only the candidates' vectors v: the index's precomputed listing parts W_l v are
not gathered (v A(u) costs the same with or without W_l folded in). Every intermediate lives
in a per-thread workspace reused across requests (grown when a request is larger), so a
request allocates only its (n, K) result; no autograd, no dispatcher, no tensor wrapping.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from relevance_kit.student.towers import RelevanceHead


def _np(t) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)


class _Workspace(threading.local):
    """One thread's buffers, by name; a buffer is reallocated only when it must grow."""

    def __init__(self) -> None:
        self.buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, rows: int, cols: int) -> np.ndarray:
        buffer = self.buffers.get(name)
        if buffer is None or buffer.shape[0] < rows or buffer.shape[1] != cols:
            buffer = np.empty((max(rows, 1), cols), np.float32)
            self.buffers[name] = buffer
        return buffer[:rows]


@dataclass(frozen=True)
class ServingHead:
    bias: np.ndarray  # (hidden,)
    blocks_t: dict[str, np.ndarray]  # feature -> (dim, hidden): the first layer, transposed
    layers: list[tuple[np.ndarray, np.ndarray]]  # the rest: (W^T, b) per Linear, ReLU between
    skip: tuple[np.ndarray, np.ndarray] | None  # the similarity skip's (w, c), each (K,)
    _workspace: _Workspace = field(default_factory=_Workspace, repr=False, compare=False)

    @classmethod
    def from_head(cls, head: RelevanceHead) -> ServingHead:
        parts = head.parts()
        linears = [m for m in parts.rest if isinstance(m, nn.Linear)]
        return cls(
            _np(parts.bias),
            {name: _np(w.T) for name, w in parts.blocks.items()},
            [(_np(m.weight.T), _np(m.bias)) for m in linears],
            None if parts.skip is None else (_np(parts.skip.weight), _np(parts.skip.bias)),
        )

    @property
    def dim(self) -> int:
        return next(iter(self.blocks_t.values())).shape[0]

    def listing_part(self, v: np.ndarray) -> np.ndarray:
        """W_l v for listing vectors (n, dim): what the index stores per listing."""
        w = self.blocks_t.get("listing")
        return v @ w if w is not None else np.zeros((len(v), len(self.bias)), np.float32)

    def candidates(self, n: int) -> np.ndarray:
        """This thread's (n, dim) buffer for the candidates' vectors: gather into it (e.g.
        `np.take(vectors, rows, axis=0, out=...)`) and pass it to `probabilities`. Valid
        until this thread's next request."""
        return self._workspace.get("v", n, self.dim)

    def probabilities(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Softmax over the labels, (n, K), for one query vector u (dim,) and the
        candidates' vectors v (n, dim)."""
        b, ws, n = self.blocks_t, self._workspace, len(v)
        hidden = len(self.bias)
        z = ws.get("z0", n, hidden)
        z[:] = self.bias + u @ b["query"] if "query" in b else self.bias
        if "listing" in b or "product" in b:
            a = ws.get("a", self.dim, hidden)
            if "product" in b:
                np.multiply(b["product"], u[:, None], out=a)
                if "listing" in b:
                    a += b["listing"]
            else:
                a[:] = b["listing"]
            z += np.matmul(v, a, out=ws.get("va", n, hidden))
        if "abs_diff" in b:
            d = np.subtract(v, u, out=ws.get("d", n, self.dim))
            np.abs(d, out=d)
            z += np.matmul(d, b["abs_diff"], out=ws.get("va", n, hidden))
        for i, (w, bias) in enumerate(self.layers):
            np.maximum(z, 0.0, out=z)
            z = np.matmul(z, w, out=ws.get(f"z{i + 1}", n, w.shape[1]))
            z += bias
        if self.skip is not None:
            w, c = self.skip
            similarity = np.matmul(v, u, out=ws.get("s", n, 1)[:, 0])
            z += np.multiply.outer(similarity, w)
            z += c
        out = z - z.max(axis=1, keepdims=True)  # (n, K): the request's one allocation
        np.exp(out, out=out)
        out /= out.sum(axis=1, keepdims=True)
        return out
