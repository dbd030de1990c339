"""Find a source file in a mirror folder, or download it, and verify its sha256.

A checksum mismatch is always an error: a silently different dataset would make every
number downstream incomparable.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import requests
from tqdm import tqdm

from relevance_kit.config import DataFile
from relevance_kit.errors import DataError
from relevance_kit.io import atomic_path


def sha256_of(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# Where DVC runs a queued experiment: a copy of the project under <project>/.dvc/tmp/exps/
EXPERIMENT_COPIES = (".dvc", "tmp", "exps")


def mirror_folders(mirror_dirs: list[str], cwd: Path | None = None) -> list[Path]:
    """The folders to look in, in order. A relative folder is relative to the project root
    (the working directory of a stage). A queued experiment (`relevance-kit sweep`, `dvc exp
    run --queue`) runs in a copy of the project under `.dvc/tmp/exps/`, where a folder beside
    the project (`../shared/...`) does not resolve: there each relative folder is also looked
    up from the project the experiment was queued in."""
    cwd = cwd or Path.cwd()
    roots = [Path()]
    n = len(EXPERIMENT_COPIES)
    for i in range(len(cwd.parts) - n):
        if cwd.parts[i : i + n] == EXPERIMENT_COPIES:
            roots.append(Path(*cwd.parts[:i]))
            break
    return [
        root / folder
        for folder in map(Path, mirror_dirs)
        for root in (roots if not folder.is_absolute() else roots[:1])
    ]


def locate(spec: DataFile, mirror_dirs: list[str], download: bool) -> Path:
    """Return a verified local copy of `spec`: the first mirror folder that has it, else a
    download into the last mirror folder (when allowed)."""
    for folder in mirror_folders(mirror_dirs):
        candidate = folder / spec.filename
        if candidate.exists():
            _verify(candidate, spec)
            return candidate
    if not download or not spec.url:
        raise DataError(
            f"{spec.filename}: not found in any mirror folder {mirror_dirs} and downloading is "
            f"{'off (data.download: false)' if not download else 'impossible (no url)'}"
        )
    target = Path(mirror_dirs[-1]) / spec.filename
    _download(spec, target)
    return target


def _verify(path: Path, spec: DataFile) -> None:
    actual = sha256_of(path)
    if actual != spec.sha256:
        raise DataError(
            f"{spec.filename} ({path}): sha256 {actual} does not match the pinned {spec.sha256}"
        )


def _download(spec: DataFile, target: Path) -> None:
    """Download to a temporary file and keep it only when its checksum matches."""
    url = str(spec.url)
    try:
        response = requests.get(url, stream=True, timeout=60)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise DataError(f"downloading {url}: {exc}") from None
    total = int(response.headers.get("content-length", 0)) or None
    with atomic_path(target) as tmp, tmp.open("wb") as out:
        with tqdm(total=total, unit="B", unit_scale=True, desc=target.name) as bar:
            for chunk in response.iter_content(1 << 16):
                out.write(chunk)
                bar.update(len(chunk))
        out.flush()
        _verify(tmp, spec)
