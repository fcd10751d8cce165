"""Package: run the hub_dataset builder per source and lay out a Parquet release with its card.

The release is a folder that stock `datasets` loads with no remote code:
``data/<config>/<split>-XXXXX-of-YYYYY.parquet`` per source, and a README whose YAML declares
one config per source plus ``all`` (the default), which globs every source's files, so nothing
is stored twice.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import tempfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .paths import data_path
from .runfolder import PAIRS, RunFolderError, read_run

CONFIG_ORDER = ("derm12345", "bcn20000", "pad_ufes_20", "scin", "hiba")


@dataclass(slots=True)
class Release:
    out: Path
    rows: dict[str, dict[str, int]] = field(default_factory=dict)  # config -> split -> rows
    nbytes: dict[str, dict[str, int]] = field(default_factory=dict)  # config -> split -> bytes
    files: dict[str, list[str]] = field(default_factory=dict)  # config -> parquet paths
    images: Counter = field(default_factory=Counter)  # source -> images
    modalities: dict[str, Counter] = field(default_factory=dict)  # source -> modality -> images
    models: Counter = field(default_factory=Counter)  # model -> pairs


def builder_module() -> Any:
    """Import hub_dataset/dermasynth.py (a file, not a package module) by path."""
    path = data_path("hub_dataset") / "dermasynth.py"
    name = "dermasynth_hub_builder"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def build_source(job: dict[str, Any]) -> dict[str, Any]:
    """Run the builder for one source config (or one chunk of its pairs): a worker's task.

    Returns the Parquet files it wrote per split, and the rows and bytes per split.
    """
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    builder = builder_module().DermaSynth(
        config_name=job["source"],
        cache_dir=job["cache"],
        dataset_name="dermasynth",
        run_dir=job["run"],
        pairs_file=job["pairs"],
        max_image_side=job["max_image_side"],
        test_fraction=job["test_fraction"],
        split_seed=job["split_seed"],
    )
    built = Path(job["built"])
    builder.download_and_prepare(
        output_dir=str(built), file_format="parquet", max_shard_size=job["max_shard_size"]
    )
    splits = builder.info.splits.items()
    return {
        "rows": {split: int(v.num_examples) for split, v in splits},
        "nbytes": {split: int(v.num_bytes) for split, v in splits},
        "files": {
            split: [str(p) for p in sorted(built.glob(f"dermasynth-{split}*.parquet"))]
            for split, _ in splits
        },
    }


def _split_pairs(run: Path, staging: Path, chunk: int, release: Release) -> dict[str, list[Path]]:
    """One pass over pairs.jsonl into files of at most ``chunk`` pairs per source, so that each
    builder reads only its own pairs and big sources can be built in parallel pieces. Pairs of
    one image stay in one piece. The counts the card needs are taken on the way."""
    chunks: dict[str, list[Path]] = {}
    handles: dict[str, Any] = {}
    counts: Counter = Counter()
    last: dict[str, str] = {}
    try:
        with open(run / PAIRS, "rb") as lines:
            for raw in lines:
                if not raw.endswith(b"\n"):
                    continue  # a torn last line is no pair
                row = json.loads(raw)
                source = row["source"]
                new_image = last.get(source) != row["image_id"]
                if source not in handles or (counts[source] >= chunk and new_image):
                    if source in handles:
                        handles[source].close()
                    path = staging / f"{source}-{len(chunks.get(source, [])):05d}.jsonl"
                    chunks.setdefault(source, []).append(path)
                    handles[source] = open(path, "wb")  # noqa: SIM115
                    counts[source] = 0
                handles[source].write(raw)
                counts[source] += 1
                release.models[row.get("model") or "unknown"] += 1
                if new_image:  # pairs of one image are adjacent in plan order
                    release.images[source] += 1
                    modality = row.get("modality") or "unknown"
                    release.modalities.setdefault(source, Counter())[modality] += 1
                last[source] = row["image_id"]
    finally:
        for handle in handles.values():
            handle.close()
    return chunks


def _collect(source: str, results: list[dict[str, Any]], target: Path, release: Release) -> None:
    """Move a source's Parquet files into data/<source>/ as <split>-XXXXX-of-YYYYY.parquet."""
    target.mkdir(parents=True)
    rows: Counter = Counter()
    nbytes: Counter = Counter()
    files: dict[str, list[str]] = {}
    for result in results:
        rows.update(result["rows"])
        nbytes.update(result["nbytes"])
        for split, paths in result["files"].items():
            files.setdefault(split, []).extend(paths)
    for split, paths in files.items():
        for i, path in enumerate(paths):
            name = f"{split}-{i:05d}-of-{len(paths):05d}.parquet"
            os.replace(path, target / name)
            release.files.setdefault(source, []).append(f"data/{source}/{name}")
    release.rows[source] = {s: n for s, n in rows.items() if n}
    release.nbytes[source] = dict(nbytes)


def package(
    run: Path,
    out: Path,
    *,
    max_image_side: int | None = 1024,
    test_fraction: float = 0.0,
    num_proc: int | None = None,
    max_shard_size: str = "500MB",
    split_seed: int = 0,
) -> Release:
    """Write the Parquet release of RUN's curated pairs to OUT (its data/ is replaced whole).

    With ``num_proc`` > 1, the builder runs in that many processes over pieces of each source.
    """
    from .card import render_card  # keeps `datasets` off the import path of the other verbs

    info = read_run(run)
    if not (run / PAIRS).is_file():
        raise RunFolderError(f"{run / PAIRS} not found: run `dermasynth curate` first")
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".package-", dir=out))
    release = Release(out)
    try:
        with open(run / PAIRS, "rb") as fh:
            total = sum(1 for _ in fh)
        workers = max(1, num_proc or 1)
        # one piece per source when serial; with workers, about four pieces per worker keep
        # them busy to the end (each piece costs a builder set-up, so not too many)
        chunk = total + 1 if workers == 1 else max(1000, min(10000, -(-total // (workers * 4))))
        pieces = _split_pairs(run, staging, chunk, release)
        if not pieces:
            raise RunFolderError(f"{run / PAIRS} holds no pairs: nothing to package")
        jobs = [
            {
                "source": source,
                "run": str(run),
                "pairs": str(path),
                "cache": str(staging / "cache" / path.stem),
                "built": str(staging / "built" / path.stem),
                "max_image_side": max_image_side,
                "test_fraction": test_fraction,
                "split_seed": split_seed,
                "max_shard_size": max_shard_size,
            }
            for source, paths in pieces.items()
            for path in paths
        ]
        builder_module()  # import datasets and the builder once: forked workers inherit them
        if workers > 1 and len(jobs) > 1:
            with ProcessPoolExecutor(min(workers, len(jobs))) as pool:
                results = list(pool.map(build_source, jobs))
        else:
            results = [build_source(job) for job in jobs]
        for source in [s for s in CONFIG_ORDER if s in pieces]:
            mine = [r for job, r in zip(jobs, results, strict=True) if job["source"] == source]
            _collect(source, mine, staging / "data" / source, release)
        if (out / "data").exists():
            shutil.rmtree(out / "data")
        (staging / "data").rename(out / "data")
        figures = run / "figures"
        if figures.is_dir():
            shutil.rmtree(out / "figures", ignore_errors=True)
            shutil.copytree(figures, out / "figures")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    tmp = out / "README.md.tmp"
    tmp.write_text(render_card(run, info, release), encoding="utf-8")
    os.replace(tmp, out / "README.md")
    return release
