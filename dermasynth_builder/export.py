"""Export a release for trainers that read files, not `datasets`: LLaVA and ShareGPT JSON.

- ``llava``: ``<split>.json``, a list of ``{"id", "image", "conversations"}`` whose turns are
  ``{"from": "human"|"gpt", "value"}`` with ``<image>`` opening the first human turn (the
  layout of LLaVA's and LLaVA-Med's instruction data).
- ``sharegpt``: ``<split>.json``, a list of ``{"messages": [{"role", "content"}], "images"}``
  with one ``<image>`` tag per image, plus the ``dataset_info.json`` LLaMA-Factory reads
  (``formatting: sharegpt``), so ``dataset_dir`` can point at the export as it is.

Either way each image is written once under ``images/<source>/`` beside the JSON, and the
release's splits are kept. ``per="image"`` makes one conversation per image (all its pairs);
``per="pair"`` one per pair. The release's Parquet is read with pyarrow, so nothing is decoded.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from .release import ReleaseError

FORMATS = ("llava", "sharegpt")
PER = ("image", "pair")
_COLUMNS = ["image_id", "source", "images", "pairs"]
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(slots=True)
class ExportSummary:
    """What an export wrote: conversations and images per split, and the files."""

    out: Path
    conversations: Counter = field(default_factory=Counter)  # split -> conversations
    images: Counter = field(default_factory=Counter)  # split -> image files
    files: list[str] = field(default_factory=list)  # the JSON files, relative to out


def _extension(data: bytes, name: str | None) -> str:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    if data[:2] == b"\xff\xd8":
        return ".jpg"
    suffix = Path(name or "").suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ".bin"


def _splits(release: Path) -> dict[str, list[Path]]:
    """Parquet files per split, over every source of the release (``data/<source>/...``)."""
    if not (release / "README.md").is_file() or not (release / "data").is_dir():
        raise ReleaseError(
            f"{release} is not a release folder (no README.md and data/): "
            "run `dermasynth package RUN --out DIR` first"
        )
    out: dict[str, list[Path]] = {}
    for path in sorted((release / "data").glob("*/*.parquet")):
        out.setdefault(path.name.split("-")[0], []).append(path)
    if not out:
        raise ReleaseError(f"{release}/data holds no Parquet files")
    return out


def _turns(pairs: list[dict[str, Any]], fmt: str) -> list[dict[str, str]]:
    turns = []
    for i, pair in enumerate(pairs):
        question = (pair.get("question") or "Describe this image.").strip()
        if i == 0:
            question = f"<image>\n{question}"
        answer = pair.get("answer") or ""
        if fmt == "llava":
            turns += [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]
        else:
            turns += [
                {"role": "user", "content": question},
                {"role": "assistant", "content": answer},
            ]
    return turns


def _entries(row: dict[str, Any], image: str, fmt: str, per: str) -> list[dict[str, Any]]:
    groups = [row["pairs"]] if per == "image" else [[p] for p in row["pairs"]]
    entries = []
    for pairs in groups:
        turns = _turns(pairs, fmt)
        ident = f"{row['source']}/{row['image_id']}" if per == "image" else pairs[0]["id"]
        if fmt == "llava":
            entries.append({"id": ident, "image": image, "conversations": turns})
        else:
            entries.append({"id": ident, "messages": turns, "images": [image]})
    return entries


def _check_out(out: Path, release: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ReleaseError(f"--out {out} exists and is not an empty folder: choose a new one")
    inside = out.resolve().is_relative_to(release.resolve())
    if inside:  # push would upload it and package would refuse the release as foreign
        raise ReleaseError(f"--out {out} is inside the release {release}: choose a folder outside")


def export(release: Path, fmt: str, out: Path, *, per: str = "image") -> ExportSummary:
    """Write ``release`` (a `dermasynth package` folder) to ``out`` in ``fmt``."""
    if fmt not in FORMATS:
        raise ReleaseError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if per not in PER:
        raise ReleaseError(f"unknown --per {per!r}; choose one of {', '.join(PER)}")
    splits = _splits(Path(release))
    _check_out(out, Path(release))
    summary = ExportSummary(out)
    out.mkdir(parents=True, exist_ok=True)
    info: dict[str, Any] = {}
    for split, paths in splits.items():
        entries: list[dict[str, Any]] = []
        for path in paths:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=256, columns=_COLUMNS):
                for row in batch.to_pylist():
                    stored = row["images"][0]
                    ext = _extension(stored["bytes"], stored.get("path"))
                    source, image_id = (_SAFE.sub("_", row[k]) for k in ("source", "image_id"))
                    rel = f"images/{source}/{image_id}{ext}"
                    target = out / rel
                    if not target.exists():
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(stored["bytes"])
                        summary.images[split] += 1
                    entries.extend(_entries(row, rel, fmt, per))
        name = f"{split}.json"
        tmp = out / f".{name}.tmp"
        tmp.write_text(json.dumps(entries, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, out / name)
        summary.conversations[split] = len(entries)
        summary.files.append(name)
        info[f"dermasynth_{split}"] = {
            "file_name": name,
            "formatting": "sharegpt",
            "columns": {"messages": "messages", "images": "images"},
            "tags": {
                "role_tag": "role",
                "content_tag": "content",
                "user_tag": "user",
                "assistant_tag": "assistant",
            },
        }
    if fmt == "sharegpt":
        (out / "dataset_info.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
        summary.files.append("dataset_info.json")
    return summary
