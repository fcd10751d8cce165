"""Benchmark `dermasynth package` at the paper's scale: 92,000 pairs over 45,000 images (~30 KB
JPEGs), side by side with writing the same rows straight to Parquet with pyarrow.

A release row is one image with all its pairs. Prints our pairs/s and its ratio to the pyarrow
baseline writing the same rows (target >= 0.8), our peak memory, the release's size against the
unique image bytes plus the text, and the time for a fresh process to `load_dataset` one config
and read its first row.

    python bench/package.py [--pairs 92000] [--images 45000] [--num-proc 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support
from dermasynth_builder.package import builder_module
from dermasynth_builder.records import SourceRecord
from dermasynth_builder.run import RunFolder, write_json_atomic
from dermasynth_builder.run.fingerprint import file_digest
from dermasynth_builder.run.schema import PAIR_RECORD_FIELDS, Pair
from tests.support.measure import run_cli
from tests.support.synthetic import draw_lesion, encode_jpeg

SOURCES = ("derm12345", "bcn20000", "pad_ufes_20", "scin", "hiba")
# The same file layout as the release: `datasets` (4.0 to 5.2) writes image datasets in row
# groups of 100 rows (small groups keep the Hub's viewer and streaming reads cheap).
ROW_GROUP = 100
LOAD = """
import sys, time
t = time.perf_counter()
import datasets
datasets.disable_progress_bars()
ds = datasets.load_dataset(sys.argv[1], "bcn20000", split="train", cache_dir=sys.argv[2])
row = ds[0]
assert row["images"][0].size
print(f"{time.perf_counter() - t:.2f} {len(ds)}")
"""


def build_run(root: Path, n_pairs: int, n_images: int) -> Path:
    pool = [encode_jpeg(draw_lesion(seed, 448), 92) for seed in range(16)]
    images = root / "images"
    run = root / "run"
    run.mkdir(parents=True)
    pairs, records = [], []
    answer = (
        "The lesion shows a regular pigment network and is most consistent with a benign "
        "melanocytic nevus; follow-up photographs are reasonable. "
    ) * 2
    for i in range(n_images):
        source = SOURCES[i % len(SOURCES)]
        name = f"IMG_{i:06d}.jpg"
        folder = images / source
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(pool[i % len(pool)])
        record = SourceRecord(
            source, name[:-4], name, "dermoscopic", "CC BY 4.0", "bench",
            diagnosis="nevus", diagnosis_code="NV", diagnosis_hierarchy=["benign", "nevus"],
            malignancy="benign", age=45, sex="female", anatomic_site="back",
            fitzpatrick_skin_type="II", group_id=f"G{i // 2}", split="train",
        )  # fmt: skip
        records.append(record)
        for k in range(n_pairs // n_images + (1 if i < n_pairs % n_images else 0)):
            pair = Pair(
                id=f"p{i:06d}-{k}", source=source, image_id=name[:-4], task="qa",
                question_type="what_is_it", question="What is the most likely diagnosis here?",
                answer=answer, model="bench", template_version="bench", label_consistent=True,
            )  # fmt: skip
            for field in PAIR_RECORD_FIELDS:
                setattr(pair, field, getattr(record, field))
            pairs.append(pair)
    pairs.sort(key=lambda p: (SOURCES.index(p.source), p.id))
    folder = RunFolder(run)
    folder.write_records(records)
    folder.write_rows("pairs.jsonl", pairs)
    sources = {s: {"root": str(images / s), "records": 0, "skipped": 0} for s in SOURCES}
    write_json_atomic(
        run / "run.json",
        {"plan": {"sources": sources}, "templates": {}, "fingerprint": {"digest": "bench"}},
    )
    folder.finish_step("curate", pairs=file_digest(run / "pairs.jsonl"))
    return run


def pyarrow_baseline(run: Path, out: Path) -> tuple[float, int]:
    """The same rows (one per image, image bytes read from the same files, the same pairs and
    messages) written with pyarrow directly, in one process."""
    builder = builder_module()
    folder = RunFolder(run)
    roots = {k: Path(v["root"]) for k, v in folder.info()["plan"]["sources"].items()}
    started = time.perf_counter()
    groups: dict[tuple[str, str], list[Pair]] = {}
    for pair in folder.pairs():
        groups.setdefault((pair.source, pair.image_id), []).append(pair)
    records = folder.records_by_image()
    diagnoses = sorted({p[0].diagnosis for p in groups.values() if p[0].diagnosis})
    schema = builder.features(diagnoses).arrow_schema
    label = {name: i for i, name in enumerate(diagnoses)}
    entry_names = list(builder.pair_features())
    rows, batch, writer = 0, [], None
    for key, pairs in groups.items():
        first, record = pairs[0], records[key]
        image, reencoded = builder.image_bytes(roots[first.source] / first.image_path, 1024)
        row = {name: getattr(first, name) for name in PAIR_RECORD_FIELDS if name != "image_path"}
        row.update(
            image_id=first.image_id, source=first.source, images=[image],
            messages=builder.messages_of(pairs),
            pairs=[{n: getattr(p, n) for n in entry_names} for p in pairs],
            diagnosis=label.get(first.diagnosis), diagnosis_code=record.diagnosis_code,
            diagnosis_hierarchy=record.diagnosis_hierarchy, malignancy=0,
            age_approximate=False, fitzpatrick_self_reported=None, monk_skin_tone=None,
            official_split=record.split, text_license=first.license, image_reencoded=reencoded,
        )  # fmt: skip
        batch.append(row)
        rows += len(pairs)
        if len(batch) == ROW_GROUP:
            writer = writer or pq.ParquetWriter(out / "train-00000.parquet", schema)
            writer.write_table(pa.Table.from_pylist(batch, schema=schema), ROW_GROUP)
            batch = []
    if batch:
        writer = writer or pq.ParquetWriter(out / "train-00000.parquet", schema)
        writer.write_table(pa.Table.from_pylist(batch, schema=schema), ROW_GROUP)
    if writer is not None:
        writer.close()
    return time.perf_counter() - started, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=92000)
    parser.add_argument("--images", type=int, default=45000)
    parser.add_argument("--num-proc", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dermasynth-pkg-") as tmp:
        root = Path(tmp)
        run = build_run(root, args.pairs, args.images)
        image_bytes = sum(p.stat().st_size for p in (root / "images").rglob("*.jpg"))
        print(
            f"{args.pairs:,} pairs over {args.images:,} images "
            f"({image_bytes / args.images / 1024:.0f} KiB JPEGs on average)"
        )
        # ours first: a child forked from this process after the baseline grew it would
        # inherit that peak RSS in its own accounting
        wall, peak = run_cli(
            "package", str(run), "--out", str(root / "release"), "--num-proc", str(args.num_proc)
        )
        baseline_dir = root / "baseline"
        baseline_dir.mkdir()
        base_wall, rows = pyarrow_baseline(run, baseline_dir)
        stored = sum(p.stat().st_size for p in (root / "release").rglob("*.parquet"))
        text = (run / "pairs.jsonl").stat().st_size
        load = subprocess.run(
            [sys.executable, "-c", LOAD, str(root / "release"), str(root / "cache")],
            capture_output=True,
            text=True,
            check=False,
        )
        if load.returncode:
            raise SystemExit(f"load_dataset failed: {load.stderr[-3000:]}")
        load_s, load_rows = load.stdout.split()
    ours, base = rows / wall, rows / base_wall
    print(
        f"dermasynth package (--num-proc {args.num_proc}): {wall:.1f} s, {ours:,.0f} pairs/s, "
        f"peak RSS {peak / 2**20:,.0f} MiB"
    )
    print(
        f"pyarrow straight to Parquet, same rows and image bytes: {base_wall:.1f} s, "
        f"{base:,.0f} pairs/s"
    )
    print(f"ratio: {ours / base:.2f} (target >= 0.8)")
    print(
        f"release size: {stored / 2**20:,.1f} MiB = {stored / (image_bytes + text):.3f} x "
        f"(unique image bytes {image_bytes / 2**20:,.1f} MiB + text {text / 2**20:,.1f} MiB; "
        "limit 1.05)"
    )
    print(
        f"load_dataset(release, 'bcn20000') + first row in a fresh process: {load_s} s "
        f"({int(load_rows):,} rows)"
    )


if __name__ == "__main__":
    main()
