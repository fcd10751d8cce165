"""Benchmark `dermasynth package` at the paper's scale: 92,000 pairs over 45,000 images (~30 KB
JPEGs), side by side with writing the same rows straight to Parquet with pyarrow.

Prints our rows/s and its ratio to the pyarrow baseline (target >= 0.6), our peak memory, and the
time for a fresh process to `load_dataset` one config and read its first row.

    python bench/package.py [--pairs 92000] [--images 45000] [--num-proc 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support
from dermasynth_builder.package import builder_module
from dermasynth_builder.run import RunFolder, write_json_atomic, write_jsonl_atomic
from dermasynth_builder.run.fingerprint import file_digest
from tests.support.measure import run_cli
from tests.support.synthetic import draw_lesion, encode_jpeg

SOURCES = ("derm12345", "bcn20000", "pad_ufes_20", "scin", "hiba")
LOAD = """
import sys, time
t = time.perf_counter()
import datasets
datasets.disable_progress_bars()
ds = datasets.load_dataset(sys.argv[1], "bcn20000", split="train", cache_dir=sys.argv[2])
row = ds[0]
assert row["image"].size
print(f"{time.perf_counter() - t:.2f} {len(ds)}")
"""


def build_run(root: Path, n_pairs: int, n_images: int) -> Path:
    pool = [encode_jpeg(draw_lesion(seed, 448), 92) for seed in range(16)]
    images = root / "images"
    run = root / "run"
    run.mkdir(parents=True)
    pairs = []
    for i in range(n_images):
        source = SOURCES[i % len(SOURCES)]
        name = f"IMG_{i:06d}.jpg"
        folder = images / source
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(pool[i % len(pool)])
        for k in range(n_pairs // n_images + (1 if i < n_pairs % n_images else 0)):
            pairs.append(
                {
                    "id": f"p{i:06d}-{k}",
                    "image_id": name[:-4],
                    "image_path": name,
                    "source": source,
                    "modality": "dermoscopic",
                    "task": "qa",
                    "question_type": "what_is_it",
                    "self_instruct": False,
                    "question": "What is the most likely diagnosis here?",
                    "answer": "The lesion shows a regular pigment network and is most consistent "
                    "with a benign melanocytic nevus; follow-up photographs are reasonable. " * 2,
                    "diagnosis": "nevus",
                    "malignancy": "benign",
                    "age": 45,
                    "sex": "female",
                    "anatomic_site": "back",
                    "fitzpatrick_skin_type": "II",
                    "group_id": f"G{i // 2}",
                    "license": "CC BY 4.0",
                    "attribution": "bench",
                    "model": "bench",
                    "template_version": "bench",
                    "label_consistent": True,
                    "malignancy_consistent": None,
                }
            )
    pairs.sort(key=lambda p: (SOURCES.index(p["source"]), p["id"]))
    write_jsonl_atomic(run / "pairs.jsonl", pairs)
    sources = {s: {"root": str(images / s), "records": 0, "skipped": 0} for s in SOURCES}
    write_json_atomic(
        run / "run.json",
        {"plan": {"sources": sources}, "templates": {}, "fingerprint": {"digest": "bench"}},
    )
    RunFolder(run).finish_step("curate", pairs=file_digest(run / "pairs.jsonl"))
    return run


def pyarrow_baseline(run: Path, out: Path) -> tuple[float, int]:
    """The same rows (image bytes read from the same files) written with pyarrow directly."""
    features = builder_module().FEATURES
    info = json.loads((run / "run.json").read_text())
    roots = {k: Path(v["root"]) for k, v in info["plan"]["sources"].items()}
    schema = features.arrow_schema
    started = time.perf_counter()
    rows, batch, writer, shard = 0, [], None, 0
    with open(run / "pairs.jsonl") as fh:
        for line in fh:
            pair = json.loads(line)
            row = {name: pair.get(name) for name in features if name != "image"}
            path = roots[pair["source"]] / pair["image_path"]
            row["image"] = {"bytes": path.read_bytes(), "path": path.name}
            batch.append(row)
            rows += 1
            if len(batch) == 5000:
                table = pa.Table.from_pylist(batch, schema=schema)
                if writer is None:
                    writer = pq.ParquetWriter(out / f"train-{shard:05d}.parquet", schema)
                writer.write_table(table)
                batch = []
    if batch:
        table = pa.Table.from_pylist(batch, schema=schema)
        writer = writer or pq.ParquetWriter(out / f"train-{shard:05d}.parquet", schema)
        writer.write_table(table)
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
        f"dermasynth package (--num-proc {args.num_proc}): {wall:.1f} s, {ours:,.0f} rows/s, "
        f"peak RSS {peak / 2**20:,.0f} MiB"
    )
    print(
        f"pyarrow straight to Parquet, same rows and image bytes: {base_wall:.1f} s, "
        f"{base:,.0f} rows/s"
    )
    print(f"ratio: {ours / base:.2f} (target >= 0.6)")
    print(
        f"load_dataset(release, 'bcn20000') + first row in a fresh process: {load_s} s "
        f"({int(load_rows):,} rows)"
    )


if __name__ == "__main__":
    main()
