"""Package: run the hub_dataset builder per source and lay out a Parquet release with its card.

The release is a folder that stock `datasets` loads with no remote code:
``data/<config>/<split>-XXXXX-of-YYYYY.parquet`` per source, and a README whose YAML declares
one config per source plus ``all`` (the default), which globs every source's files, so nothing
is stored twice. It is built whole beside ``--out`` and swapped in (see `release_folder`), so
`package` never deletes or overwrites a file it did not write.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from .release import Release, ReleaseError, builder_module
from .release_folder import check_out, clean_leftovers, resolve_out, staging, swap_in, write_marker
from .release_pieces import Batches, Memory, astuple, split_records
from .release_writer import write_split
from .run.fingerprint import file_digest
from .run.folder import JUDGEMENTS, PAIRS, RunFolder
from .run.jsonl import RunFolderError
from .run.schema import Pair
from .sources.registry import REGISTRY, SOURCE_NAMES, UnknownLicenseError, license_for

__all__ = ["IMPORTED_TEXT_LICENSE", "Release", "build_source", "builder_module", "package"]

# The published DermaSynth text is CC BY-NC 4.0, whatever the licence of the image it describes.
IMPORTED_TEXT_LICENSE = "CC BY-NC 4.0"


# How `build_source` writes a config's Parquet: "pyarrow" (the builder's rows written by
# `release_writer`), or "datasets" (the builder's stock `download_and_prepare`). Both give the
# same tables (`tests/test_package_datasets.py`); the first skips `datasets`' generic writer.
WRITER = "pyarrow"
IN_MEMORY_BYTES = 256 * 2**20  # pairs.jsonl up to this size is packaged without piece files


def build_source(job: dict[str, Any]) -> dict[str, Any]:
    """Run the builder for one source config (or one piece of its pairs): a worker's task.

    Returns the Parquet files it wrote per split, the rows and bytes per split, and how many
    rows hold a re-encoded image.
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
        records_file=job["records"],
        max_image_side=job["max_image_side"],
        test_fraction=job["test_fraction"],
        split_seed=job["split_seed"],
        diagnoses=tuple(job["diagnoses"]),
        text_license=job["text_license"],
    )
    built = Path(job["built"])
    try:
        if WRITER == "datasets":
            return _prepare(builder, built, job["max_shard_size"])
        return _write(builder, built, job)
    except Exception as exc:  # datasets wraps the reader's error: say the cause in one line
        cause = _root_cause(exc)
        if isinstance(cause, OSError | ValueError):  # a missing file, an unreadable image
            raise ReleaseError(
                f"{job['source']}: cannot read an image of the run ({cause}); was it moved or "
                "changed since `dermasynth plan`?"
            ) from None
        raise


def _write(builder: Any, built: Path, job: dict[str, Any]) -> dict[str, Any]:
    """The builder's rows, split by split, written by `release_writer`."""
    roots, splits = builder.splits(job.get("pair_rows"), job.get("record_rows"))
    schema = builder.info.features.arrow_schema
    built.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"rows": {}, "nbytes": {}, "files": {}, "reencoded": 0}
    for split, images in splits.items():
        rows = (row for _, row in builder.examples(images, roots))
        out = write_split(
            rows,
            schema,
            built / f"dermasynth-{split}",
            row_group=builder_module().ROW_GROUP,
            max_shard_size=job["max_shard_size"],
        )
        result["rows"][split], result["nbytes"][split] = out["rows"], out["nbytes"]
        result["files"][split] = out["files"]
        result["reencoded"] += out["reencoded"]
    return result


def _prepare(builder: Any, built: Path, max_shard_size: str | int) -> dict[str, Any]:
    """The builder's stock `download_and_prepare` to Parquet."""
    builder.download_and_prepare(
        output_dir=str(built), file_format="parquet", max_shard_size=max_shard_size
    )
    splits = builder.info.splits.items()
    files = {
        split: [str(p) for p in sorted(built.glob(f"dermasynth-{split}*.parquet"))]
        for split, _ in splits
    }
    reencoded = 0
    for path in (p for paths in files.values() for p in paths):
        flags = pq.read_table(path, columns=["image_reencoded"]).column(0)
        reencoded += pc.sum(flags).as_py() or 0
    return {
        "rows": {split: int(v.num_examples) for split, v in splits},
        "nbytes": {split: int(v.num_bytes) for split, v in splits},
        "files": files,
        "reencoded": reencoded,
    }


def _root_cause(exc: BaseException) -> BaseException:
    seen = set()
    while (exc.__cause__ or exc.__context__) is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return exc


def _check(path: Path, n: int, pair: Pair) -> None:
    """Is line ``n`` a pair of a known source with a known licence? Else one clear error."""
    if not pair.source or not pair.image_id:
        raise ReleaseError(f"{path} line {n}: not a pair with a 'source' and an 'image_id'")
    if pair.source not in REGISTRY:
        raise ReleaseError(f"{path} line {n}: unknown source {pair.source!r}")
    try:
        license_for(pair.license)
    except UnknownLicenseError as exc:
        raise ReleaseError(f"{path} line {n} ({pair.image_id}): {exc}") from None


def _split_pairs(
    run: Path, work: Path, chunk: int, release: Release, memory: dict[str, list] | None = None
) -> dict[str, list[Path]]:
    """One pass over pairs.jsonl (typed `Pair` rows) into per-source pieces of about ``chunk``
    pairs each: piece files, or with ``memory`` (a serial build, in this process), lists of the
    `Pair` rows and parsed records in ``memory`` under the pieces' names.

    Each builder then reads only its own pairs, and big sources build in parallel pieces. Pairs
    are grouped by (source, image_id) explicitly, whatever their order in the file: an image is
    assigned to a piece when first seen and every later pair of it follows it there, so it is
    read and encoded once. Without ``memory`` only that index is kept in memory, not the pairs.
    The counts the card needs, and the release's diagnosis label space, are taken on the way."""
    pieces: dict[str, list[Path]] = {}
    size: Counter = Counter()
    piece_of: dict[tuple[str, str], str] = {}  # an image's piece, by name (cheap to hash)
    batches = Batches() if memory is None else Memory(memory)
    known: set[tuple[Any, Any]] = set()  # checked (source, licence) couples
    diagnoses: set[str] = set()
    with batches:
        for n, pair in enumerate(RunFolder(run).pairs(), 1):
            source, image, lic = pair.source, pair.image_id, pair.license
            if (source, lic) not in known or not image:
                _check(run / PAIRS, n, pair)  # raises unless all is well
                known.add((source, lic))
            key = (source, image)
            path = piece_of.get(key)
            if path is None:
                own = pieces.setdefault(source, [])
                if not own or size[str(own[-1])] >= chunk:
                    own.append(work / f"{source}-{len(own):05d}.pairs")
                path = piece_of[key] = str(own[-1])
                release.images[source] += 1
                modality = pair.modality or "unknown"
                release.modalities.setdefault(source, Counter())[modality] += 1
                if pair.diagnosis is not None:
                    diagnoses.add(pair.diagnosis)
            batches.add(path, pair if memory is not None else astuple(pair))
            size[path] += 1
            release.pairs[source] += 1
            release.models[pair.model or "unknown"] += 1
    for source, lic in known:
        release.licenses.setdefault(source, set()).add(lic)
    release.diagnoses = sorted(diagnoses)
    split_records(run, piece_of, pieces, memory)
    return pieces


def _collect(source: str, results: list[dict[str, Any]], target: Path, release: Release) -> None:
    """Move a source's Parquet files into data/<source>/ as <split>-XXXXX-of-YYYYY.parquet."""
    target.mkdir(parents=True)
    rows: Counter = Counter()
    nbytes: Counter = Counter()
    files: dict[str, list[str]] = {}
    for result in results:
        release.reencoded += result["reencoded"]
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
    workers = max(1, options.pop("num_proc") or 1)
    # one piece per source when serial; with workers, about four pieces per worker keep
    # them busy to the end (each piece costs a builder set-up, so not too many)
    chunk = sys.maxsize
    if workers > 1:
        with open(run / PAIRS, "rb") as fh:
            total = sum(1 for _ in fh)
        chunk = max(1000, min(10000, -(-total // (workers * 4))))
    # serial: the pieces stay in memory and go straight to the builder, in this process, unless
    # the run is so large that holding its pairs (~2 KiB each) would cost more than files do
    small = (run / PAIRS).stat().st_size <= IN_MEMORY_BYTES
    memory: dict[str, list] | None = {} if workers == 1 and WRITER == "pyarrow" and small else None
    pieces = _split_pairs(run, work, chunk, release, memory)
    if not pieces:
        raise RunFolderError(f"{run / PAIRS} holds no pairs: nothing to package")
    jobs = [
        {
            "source": source,
            "run": str(run),
            "pairs": str(path),
            "records": str(path.with_suffix(".records")),
            "cache": str(work / "cache" / path.stem),
            "built": str(work / "built" / path.stem),
            "diagnoses": release.diagnoses,
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
        results = []
        for job in jobs:
            if memory is not None:  # handed over, then let go once the piece is written
                job["pair_rows"] = memory.pop(job["pairs"])
                job["record_rows"] = memory.pop(job["records"])
            results.append(build_source(job))
            job.pop("pair_rows", None), job.pop("record_rows", None)
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
    judged = folder.file(JUDGEMENTS)
    now = judged.stat().st_size if judged.is_file() else 0
    if now != (mark.get("results") or {}).get(JUDGEMENTS, 0):
        raise RunFolderError(
            f"{judged} changed since the last curate (a judge pass?): run "
            f"`dermasynth curate {folder.path}` to apply it first"
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
        release.imported = bool(info.get("import"))
        release.text_license = IMPORTED_TEXT_LICENSE if release.imported else None
        release.max_image_side, release.test_fraction = max_image_side, test_fraction
        options = {
            "text_license": release.text_license,
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
