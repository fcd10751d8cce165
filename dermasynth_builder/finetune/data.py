"""The training rows: a packaged release read as it is published, and the paper's subset.

Needs only `datasets` (a core dependency), so the subset and the checks are testable and usable
without the training extra.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ..run.fingerprint import file_digest

REQUIRED = ("messages", "images")


class FinetuneError(ValueError):
    """Bad input for fine-tuning: one line for the user (exit 2)."""


def load_release(release: str, config: str = "all", split: str = "train") -> Any:
    """The release's ``split`` as a ``datasets.Dataset``, checked to carry TRL's columns."""
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    path = Path(release)
    if not path.exists() and (release.startswith((".", "/", "~")) or release.count("/") != 1):
        raise FinetuneError(f"{release}: no such release folder")
    try:
        ds = datasets.load_dataset(str(path) if path.exists() else release, config, split=split)
    except (ValueError, FileNotFoundError, datasets.exceptions.DatasetNotFoundError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FinetuneError(
            f"{release}: cannot load config {config!r} split {split!r}: {first}"
        ) from None
    missing = [c for c in REQUIRED if c not in ds.column_names]
    if not missing:  # a card's features fill a column the files lack with nulls
        empty = [c for c in REQUIRED if not any(ds.select_columns([c])[c])]
        missing = empty if len(empty) == len(REQUIRED) or "messages" in empty else []
    if missing:
        raise FinetuneError(
            f"{release}: no {' and no '.join(repr(c) for c in missing)} column: not a release "
            "in the conversational layout (package it again with `dermasynth package`)"
        )
    return ds


def draw_samples(ds: Any, n: int | None, seed: int = 0) -> Any:
    """A seeded subset of ``n`` rows drawn per source, each source keeping its share (largest
    remainders); a row's place depends only on (seed, source, image_id), so the subset is stable."""
    if n is None or n >= len(ds):
        return ds
    sources = ds["source"]
    ids = ds["image_id"]
    by_source: dict[str, list[int]] = {}
    for i, source in enumerate(sources):
        by_source.setdefault(source, []).append(i)
    quotas = {s: n * len(rows) / len(ds) for s, rows in by_source.items()}
    take = {s: int(q) for s, q in quotas.items()}
    for s in sorted(quotas, key=lambda s: (take[s] - quotas[s], s))[: n - sum(take.values())]:
        take[s] += 1
    keep: list[int] = []
    for source, rows in sorted(by_source.items()):
        rows.sort(key=lambda i: hashlib.sha256(f"{seed}|{source}|{ids[i]}".encode()).hexdigest())
        keep.extend(rows[: take[source]])
    return ds.select(sorted(keep))


def release_fingerprint(release: str) -> str | None:
    """A digest of a local release's data files (names and contents); None for a hub id."""
    root = Path(release)
    if not root.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(root.glob("data/**/*.parquet")):
        digest.update(f"{path.relative_to(root).as_posix()}\0{file_digest(path)}\n".encode())
    return digest.hexdigest()
