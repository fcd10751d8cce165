"""Benchmark `dermasynth package` at the paper's scale: 92,000 pairs over 45,000 images (~30 KB
JPEGs), side by side with writing the same rows straight to Parquet with pyarrow.

A release row is one image with all its pairs. Both sides run as a fresh process (as a user
runs them), alternately, best of ``--rounds`` each (the machine is shared). Prints our pairs/s
and its ratio to the pyarrow baseline writing the same rows (made by the same `RowMaker`, in
row groups of the same size; target >= 0.8, aim 0.9), our peak memory, the release's size
against the unique image bytes plus the text, and the time for a fresh process to
`load_dataset` one config and read its first row.

    python bench/package.py [--pairs 92000] [--images 45000] [--num-proc 1] [--rounds 3]
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
from dermasynth_builder.records import SourceRecord
from dermasynth_builder.release import builder_module
from dermasynth_builder.release_images import image_bytes
from dermasynth_builder.release_rows import RowMaker
from dermasynth_builder.run import RunFolder, write_json_atomic
from dermasynth_builder.run.fingerprint import file_digest
from dermasynth_builder.run.schema import PAIR_RECORD_FIELDS, Pair

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


def unique_jpeg(data: bytes, tag: str) -> bytes:
    """The JPEG with a comment segment naming it: every image's bytes differ, as real images'
    do (else Parquet's dictionary encoding stores 16 images once each, unlike any real run)."""
    payload = f"dermasynth bench {tag}".encode()
    return data[:2] + b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload + data[2:]


def build_run(root: Path, n_pairs: int, n_images: int) -> Path:
    from tests.support.synthetic import draw_lesion, encode_jpeg

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
        (folder / name).write_bytes(unique_jpeg(pool[i % len(pool)], name))
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


def pyarrow_baseline(run: Path, out: Path, schema: pa.Schema) -> int:
    """The same rows (one per image: image bytes read from the same files, the same pairs,
    messages and record fields, made by the same `RowMaker`) written with pyarrow directly, in
    one process, in row groups of the same size. Returns the pairs written."""
    folder = RunFolder(run)
    roots = {k: v["root"] for k, v in folder.info()["plan"]["sources"].items()}
    groups: dict[tuple[str, str], list[Pair]] = {}
    for pair in folder.pairs():
        groups.setdefault((pair.source, pair.image_id), []).append(pair)
    records = folder.records_by_image()
    maker = RowMaker(sorted({p[0].diagnosis for p in groups.values() if p[0].diagnosis}))
    rows, batch = 0, []
    with pq.ParquetWriter(out / "train-00000.parquet", schema) as writer:
        for key, pairs in groups.items():
            first = pairs[0]
            image, reencoded = image_bytes(roots[first.source], first.image_path, 1024)
            batch.append(maker.row(pairs, records.get(key), image, reencoded))
            rows += len(pairs)
            if len(batch) == ROW_GROUP:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema), ROW_GROUP)
                batch = []
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema), ROW_GROUP)
    return rows


def run_baseline(run: Path, out: Path, schema_file: Path) -> float:
    """The baseline in a fresh process, like `dermasynth package`: wall seconds."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, __file__, "--baseline", str(run), str(out), str(schema_file)], check=True
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=92000)
    parser.add_argument("--images", type=int, default=45000)
    parser.add_argument("--num-proc", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs; best of each")
    parser.add_argument(
        "--baseline", nargs=3, metavar=("RUN", "OUT", "SCHEMA"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.baseline:  # the child process of `run_baseline`
        run, out, schema_file = map(Path, args.baseline)
        pyarrow_baseline(run, out, pa.ipc.read_schema(pa.OSFile(str(schema_file))))
        return
    from tests.support.measure import run_cli

    with tempfile.TemporaryDirectory(prefix="dermasynth-pkg-") as tmp:
        root = Path(tmp)
        run = build_run(root, args.pairs, args.images)
        image_bytes_total = sum(p.stat().st_size for p in (root / "images").rglob("*.jpg"))
        print(
            f"{args.pairs:,} pairs over {args.images:,} images "
            f"({image_bytes_total / args.images / 1024:.0f} KiB JPEGs on average)"
        )
        diagnoses = sorted({p.diagnosis for p in RunFolder(run).pairs() if p.diagnosis})
        schema_file = root / "schema.arrow"
        with pa.OSFile(str(schema_file), "wb") as fh:
            fh.write(builder_module().features(diagnoses).arrow_schema.serialize())
        ours, base, peak = [], [], 0
        for i in range(args.rounds):  # alternate, so both see the same load from neighbours
            wall, rss = run_cli(
                "package", str(run), "--out", str(root / "release"),
                "--num-proc", str(args.num_proc),
            )  # fmt: skip
            ours.append(wall)
            peak = max(peak, rss)
            baseline_dir = root / f"baseline-{i}"
            baseline_dir.mkdir()
            base.append(run_baseline(run, baseline_dir, schema_file))
        stored = sum(p.stat().st_size for p in (root / "release").rglob("*.parquet"))
        base_stored = sum(p.stat().st_size for p in (root / "baseline-0").rglob("*.parquet"))
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
    wall, base_wall = min(ours), min(base)
    rate, base_rate = args.pairs / wall, args.pairs / base_wall
    print(
        f"dermasynth package (--num-proc {args.num_proc}, a fresh process, best of "
        f"{args.rounds}): {wall:.1f} s, {rate:,.0f} pairs/s, peak RSS {peak / 2**20:,.0f} MiB "
        f"(all runs: {', '.join(f'{w:.1f}' for w in ours)} s)"
    )
    print(
        f"pyarrow straight to Parquet, same rows and image bytes (one fresh process, best of "
        f"{args.rounds}): {base_wall:.1f} s, {base_rate:,.0f} pairs/s "
        f"(all runs: {', '.join(f'{w:.1f}' for w in base)} s)"
    )
    print(f"ratio: {rate / base_rate:.2f} (target >= 0.8, aim 0.9)")
    print(
        f"release size: {stored / 2**20:,.1f} MiB = {stored / (image_bytes_total + text):.3f} x "
        f"(unique image bytes {image_bytes_total / 2**20:,.1f} MiB + text {text / 2**20:,.1f} "
        f"MiB; limit 1.05); the pyarrow baseline's file: {base_stored / 2**20:,.1f} MiB"
    )
    print(
        f"load_dataset(release, 'bcn20000') + first row in a fresh process: {load_s} s "
        f"({int(load_rows):,} rows)"
    )


if __name__ == "__main__":
    main()
