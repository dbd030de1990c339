"""The student's listing index: for every catalogue listing its vector v, the head's listing
part W_l v, and a hash of the text it was embedded from, stamped with the model version.

An index is an immutable snapshot: the scorer swaps whole snapshots (one reference
assignment), so a request in flight keeps the snapshot it started with.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from relevance_kit.errors import DataError
from relevance_kit.io import atomic_path


class UnknownListings(DataError):
    """Listing ids the index does not hold (the service answers 404)."""

    def __init__(self, ids: list[str], version: str) -> None:
        self.ids = ids
        super().__init__(
            f"{len(ids)} listing id(s) not in the student index (model {version}): {ids[:10]}"
        )


def content_hash(text: str) -> str:
    """What decides whether a listing must be re-embedded: a hash of its tower text."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass(frozen=True)
class ListingIndex:
    model_name: str
    model_version: str
    listing_ids: np.ndarray  # (n,) str
    vectors: np.ndarray  # (n, dim) float32
    listing_parts: np.ndarray  # (n, hidden) float32
    content_hashes: np.ndarray  # (n,) str; "" where unknown (an index from before hashes)
    row: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "row", {i: r for r, i in enumerate(self.listing_ids.tolist())})

    def __len__(self) -> int:
        return len(self.listing_ids)

    @classmethod
    def load(cls, path: str | Path, name: str, version: str) -> ListingIndex:
        """Read an index file; refuse one built by another model (name or version)."""
        path = Path(path)
        if not path.exists():
            raise DataError(f"{path}: no student index here")
        with np.load(path) as npz:
            arrays = {key: npz[key] for key in npz.files}
        built = (str(arrays["model_name"]), str(arrays["model_version"]))
        if built != (name, version):
            raise DataError(
                f"{path}: index built by model {built[0]!r} version {built[1]}, but the "
                f"query encoder and head are {name!r} version {version}; rebuild the index "
                "with the same checkpoint (dvc repro export_student)"
            )
        n = len(arrays["listing_ids"])
        hashes = arrays.get("content_hashes", np.full(n, "", dtype="<U16"))
        return cls(
            built[0],
            built[1],
            arrays["listing_ids"],
            np.ascontiguousarray(arrays["vectors"], dtype=np.float32),
            np.ascontiguousarray(arrays["listing_parts"], dtype=np.float32),
            hashes,
        )

    def save(self, path: str | Path) -> None:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(
                f,
                listing_ids=np.asarray(self.listing_ids, dtype=str),
                vectors=self.vectors.astype(np.float32),
                listing_parts=self.listing_parts.astype(np.float32),
                content_hashes=np.asarray(self.content_hashes, dtype=str),
                model_name=np.asarray(self.model_name),
                model_version=np.asarray(self.model_version),
            )

    def rows(self, listing_ids: Sequence[str]) -> np.ndarray:
        """Row numbers of `listing_ids`, in order; UnknownListings names the missing ones."""
        try:
            return np.fromiter(map(self.row.__getitem__, listing_ids), np.intp, len(listing_ids))
        except KeyError:
            unknown = [i for i in listing_ids if i not in self.row]
            raise UnknownListings(unknown, self.model_version) from None
