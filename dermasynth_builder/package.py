"""Package: run the hub_dataset builder per source and lay out a Parquet release with its card.

The release is a folder that stock `datasets` loads with no remote code:
``data/<config>/<split>-XXXXX-of-YYYYY.parquet`` per source, and a README whose YAML declares
one config per source plus ``all`` (the default), which globs every source's files, so nothing
is stored twice. It is built whole beside ``--out`` and swapped in (see `release_folder`), so
`package` never deletes or overwrites a file it did not write.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import IO, Any

from .release import Release, ReleaseError, builder_module
from .release_folder import check_out, clean_leftovers, resolve_out, staging, swap_in, write_marker
from .run.fingerprint import file_digest
from .run.folder import PAIRS, RunFolder
from .run.jsonl import RunFolderError
from .sources.registry import REGISTRY, SOURCE_NAMES, UnknownLicenseError, license_for

__all__ = ["Release", "build_source", "builder_module", "package"]

_MAX_OPEN = 64  # piece files open at once while splitting (the rest are reopened to append)


def build_source(job: dict[str, Any]) -> dict[str, Any]:
    """Run the builder for one source config (or one piece of its pairs): a worker's task.

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


def _check(path: Path, n: int, row: Any) -> None:
    """Is line ``n`` a pair of a known source with a known licence? Else one clear error."""
    if not isinstance(row, dict) or not row.get("source") or not row.get("image_id"):
        raise ReleaseError(f"{path} line {n}: not a pair with a 'source' and an 'image_id'")
    if row["source"] not in REGISTRY:
        raise ReleaseError(f"{path} line {n}: unknown source {row['source']!r}")
    try:
        license_for(row.get("license"))
    except UnknownLicenseError as exc:
        raise ReleaseError(f"{path} line {n} ({row['image_id']}): {exc}") from None


def _split_pairs(run: Path, work: Path, chunk: int, release: Release) -> dict[str, list[Path]]:
    """One pass over pairs.jsonl into per-source pieces of about ``chunk`` pairs each.

    Each builder then reads only its own pairs, and big sources build in parallel pieces. Pairs
    are grouped by (source, image_id) explicitly, whatever their order in the file: an image is
    assigned to a piece when first seen and every later pair of it follows it there, so it is
    read and encoded once. Only that index is kept in memory, not the pairs. The counts the card
    needs are taken on the way."""
    pieces: dict[str, list[Path]] = {}
    size: Counter = Counter()
    piece_of: dict[tuple[str, str], Path] = {}
    handles: dict[Path, IO[bytes]] = {}
    known: set[tuple[Any, Any]] = set()  # checked (source, licence) couples
    try:
        with open(run / PAIRS, "rb") as lines:
            for n, raw in enumerate(lines, 1):
                if not raw.endswith(b"\n"):
                    continue  # a torn last line is no pair
                try:
                    row = json.loads(raw)
                    source, image, lic = row["source"], row["image_id"], row.get("license")
                except (ValueError, TypeError, KeyError, AttributeError):
                    row, source, image, lic = None, None, None, None
                if (source, lic) not in known or not image:
                    _check(run / PAIRS, n, row)  # raises unless all is well
                    known.add((source, lic))
                key = (source, image)
                path = piece_of.get(key)
                if path is None:
                    own = pieces.setdefault(source, [])
                    if not own or size[own[-1]] >= chunk:
                        own.append(work / f"{source}-{len(own):05d}.jsonl")
                    path = piece_of[key] = own[-1]
                    release.images[source] += 1
                    modality = row.get("modality") or "unknown"
                    release.modalities.setdefault(source, Counter())[modality] += 1
                handle = handles.get(path)
                if handle is None:
                    if len(handles) >= _MAX_OPEN:  # close the longest open; reopened to append
                        handles.pop(next(iter(handles))).close()
                    handle = handles[path] = open(path, "ab")  # noqa: SIM115 (closed below)
                handle.write(raw)
                size[path] += 1
                release.models[row.get("model") or "unknown"] += 1
    finally:
        for handle in handles.values():
            handle.close()
    for source, lic in known:
        release.licenses.setdefault(source, set()).add(lic)
    return pieces


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


def _build(run: Path, new: Path, work: Path, options: dict[str, Any], release: Release) -> None:
    """Write data/ of the new release into ``new``, with builder caches and pieces in ``work``."""
    with open(run / PAIRS, "rb") as fh:
        total = sum(1 for _ in fh)
    workers = max(1, options.pop("num_proc") or 1)
    # one piece per source when serial; with workers, about four pieces per worker keep
    # them busy to the end (each piece costs a builder set-up, so not too many)
    chunk = total + 1 if workers == 1 else max(1000, min(10000, -(-total // (workers * 4))))
    pieces = _split_pairs(run, work, chunk, release)
    if not pieces:
        raise RunFolderError(f"{run / PAIRS} holds no pairs: nothing to package")
    jobs = [
        {
            "source": source,
            "run": str(run),
            "pairs": str(path),
            "cache": str(work / "cache" / path.stem),
            "built": str(work / "built" / path.stem),
            **options,
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
    for source in [s for s in SOURCE_NAMES if s in pieces]:
        mine = [r for job, r in zip(jobs, results, strict=True) if job["source"] == source]
        _collect(source, mine, new / "data" / source, release)


def _curated_pairs(folder: RunFolder) -> dict[str, Any]:
    """The curate step's mark, once sure pairs.jsonl is what curate wrote from the current plan."""
    pairs = folder.file(PAIRS)
    if not pairs.is_file():
        raise RunFolderError(f"{pairs} not found: run `dermasynth curate` first")
    mark = folder.require_step("curate", "package")
    if mark.get("pairs") and file_digest(pairs) != mark["pairs"]:
        raise RunFolderError(
            f"{pairs} changed since `dermasynth curate` wrote it: run `dermasynth curate` again"
        )
    return mark


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
    """Write the Parquet release of RUN's curated pairs to OUT, replacing only our own release.

    OUT must be absent, empty, or a release this function wrote with nothing added; anything
    else raises `ForeignContentError` and is left as it was. With ``num_proc`` > 1 the builder
    runs in that many processes over pieces of each source. The run folder is locked meanwhile,
    and its ``package`` step is marked done only once the new release is in place.
    """
    from .card import render_card  # keeps `datasets` off the import path of the other verbs

    folder = RunFolder(run)
    with folder.lock("package"):
        info = folder.info()
        curated = _curated_pairs(folder)
        out = resolve_out(out)
        clean_leftovers(out)
        check_out(out)  # fail before the work; checked again at the swap
        folder.start_step("package")
        release = Release(out)
        options = {
            "num_proc": num_proc,
            "max_image_side": max_image_side,
            "test_fraction": test_fraction,
            "split_seed": split_seed,
            "max_shard_size": max_shard_size,
        }
        with staging(out) as root:
            new, work = root / "release", root / "work"
            work.mkdir(parents=True)
            new.mkdir()
            _build(run, new, work, options, release)
            figures = run / "figures"
            if figures.is_dir():
                shutil.copytree(figures, new / "figures")
                release.figures = sorted(p.name for p in (new / "figures").glob("*.png"))
            (new / "README.md").write_text(render_card(run, info, release), encoding="utf-8")
            write_marker(new, run)  # last: the release is complete
            swap_in(new, out)
        folder.finish_step("package", pairs=curated.get("pairs"), out=str(out))
    return release
