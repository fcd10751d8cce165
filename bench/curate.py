"""Benchmark `dermasynth curate` for time and peak memory at DermaSynth's and SCALEMED's scale.

Issue 13's targets: at 1.2M responses (SCALEMED: 1.2M pairs over 82k images, ~15 per image)
curation takes at most 10 minutes and 1 GiB on the 2-core machine, and its peak memory does not
grow with the number of responses. For each size this writes a synthetic run folder (records,
requests, responses; no images), runs the real curate step in a child process and prints its
wall time and peak RSS (the child's ru_maxrss), next to the targets. Side by side, at the
smallest size, a child that only holds every response in a dict, as curate did before it
streamed, shows what the old approach cost in memory for the same file.

The per-pair checks run in curate's worker processes (one per core, up to four); "all MiB" is
the most that curate and its workers held at once (their resident memory summed, sampled every
0.2 s; a worker's own rusage would count its parent's pages between fork and exec).
``--one-process`` also times the smallest size with ``--workers 0``, side by side.

    python bench/curate.py [--sizes 92000 1200000] [--per-image 15] [--self-share 0.163]
                           [--workers N] [--one-process]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from dermasynth_builder.run import RunFolder, dumps, write_json_atomic  # noqa: E402
from dermasynth_builder.run.fingerprint import file_digest  # noqa: E402

SOURCES = ("derm12345", "bcn20000", "pad_ufes_20", "scin", "hiba")
DIAGNOSES = (
    ("nevus", "benign"),
    ("melanoma", "malignant"),
    ("basal cell carcinoma", "malignant"),
    ("seborrheic keratosis", "benign"),
    ("actinic keratosis", "indeterminate"),
    ("Eczema", None),
)
TYPES = ("what_is_it", "visual_features", "benign_vs_malignant", "dense_caption", "management")
WH = ("What", "Which", "How", "Why", "Where", "When would", "In what way does", "Could")
FEATURES = "border,colour pattern,pigment network,vessels,surface scale,symmetry,dots".split(",")
WORDS = (
    "lesion border colour brown pink macule papule network vessels scale surface regular "
    "irregular asymmetric symmetric pattern dots globules streaks dermoscopy biopsy benign "
    "features suggest consistent with appearance central peripheral area shows visible "
    "follow up examination skin image finding uniform variegated raised flat"
).split()
# model-written questions draw on a few thousand words with a Zipf-like skew: 2,000 made-up
# words after the domain words, the k-th drawn with weight 1/k
SYLLABLES = "pa ke ro mi su ta lo ve ni da bo gu".split()
VOCAB = WORDS + [f"{a}{b}{c}" for a in SYLLABLES for b in SYLLABLES for c in SYLLABLES][:2000]
ZIPF = [1 / (k + 1) for k in range(len(VOCAB))]
CALLS = (
    "This is most likely a {d}.",
    "The features are consistent with {d} rather than melanoma.",
    "It is not a {d}; a benign nevus is more likely.",
    "The differential includes {d} and seborrheic keratosis.",
    "Overall the lesion looks benign.",
    "Malignancy cannot be excluded without a biopsy.",
)


def question(rng: random.Random) -> str:
    if rng.random() < 0.7:
        words = rng.choices(VOCAB, weights=ZIPF, k=rng.randint(6, 14))
        return f"{rng.choice(WH)} {' '.join(words)}?"
    return f"{rng.choice(WH)} the {rng.choice(FEATURES)} in this image suggest the diagnosis?"


def build(run: Path, n_responses: int, per_image: int, self_share: float, seed: int = 0) -> None:
    """Write the run folder line by line (the bench itself holds no more than the curate step
    does, so that building 1.2M responses fits beside other work)."""
    rng = random.Random(seed)
    run.mkdir(parents=True)
    n_images = max(1, n_responses // per_image)
    completion: list[tuple[float, int]] = []  # (random key, byte offset) to shuffle lines
    with (
        open(run / "records.jsonl", "w") as records,
        open(run / "requests.jsonl", "w") as requests,
        open(run / "responses.plan.jsonl", "w") as responses,
    ):
        k = 0
        for i in range(n_images):
            source = SOURCES[i % len(SOURCES)]
            image_id = f"IMG_{i:07d}"
            diagnosis, malignancy = rng.choice(DIAGNOSES)
            records.write(
                dumps(
                    {
                        "source": source,
                        "image_id": image_id,
                        "image_path": f"{image_id}.jpg",
                        "modality": "dermoscopic",
                        "license": "CC BY 4.0",
                        "attribution": "bench",
                        "diagnosis": diagnosis,
                        "malignancy": malignancy,
                        "age": rng.choice([None, 25, 38, 47, 55, 63, 71, 84]),
                        "sex": rng.choice(["female", "male", None]),
                        "fitzpatrick_skin_type": rng.choice(["I", "II", "III", "IV", "V", None]),
                        "monk_skin_tone": rng.randint(1, 10) if source == "scin" else None,
                        "group_id": f"G{i // 3}",
                    }
                )
                + "\n"
            )
            for slot in range(per_image if i < n_images - 1 else n_responses - k):
                rid = f"r{k:08d}"
                is_self = rng.random() < self_share
                qtype = "self_instruct" if is_self else rng.choice(TYPES)
                row = {
                    "id": rid,
                    "source": source,
                    "image_id": image_id,
                    "question_type": qtype,
                    "self_instruct": is_self,
                    "task": "qa",
                    "bank": "general",
                }
                requests.write(
                    dumps({**row, "image_path": f"{image_id}.jpg", "slot": slot, "question": "q?"})
                    + "\n"
                )
                text = " ".join(rng.choices(WORDS, k=rng.randint(25, 90)))
                call = rng.choice(CALLS).format(d=(diagnosis or "nevus").lower())
                completion.append((rng.random(), responses.tell()))
                row.update(
                    instruction="planned question",
                    question=question(rng) if is_self else "planned question",
                    answer=f"{call} {text}.",
                    model="bench",
                    backend="bench",
                    call_id=rid,
                    usage={"prompt_tokens": 700, "completion_tokens": 120},
                )
                responses.write(dumps(row) + "\n")
                k += 1
    completion.sort()  # completion order is not plan order
    with (
        open(run / "responses.plan.jsonl", "rb") as src,
        open(run / "responses.jsonl", "wb") as out,
    ):
        for _, offset in completion:
            src.seek(offset)
            out.write(src.readline())
    del completion
    (run / "responses.plan.jsonl").unlink()
    write_json_atomic(
        run / "run.json",
        {"plan": {}, "templates": {"version": "bench"}, "fingerprint": {"digest": "bench"}},
    )
    RunFolder(run).finish_step("plan", requests_sha256=file_digest(run / "requests.jsonl"))


def child(run: Path, mode: str, workers: int | None) -> None:
    started = time.perf_counter()
    if mode == "curate":
        from dermasynth_builder.curate import curate

        summary = curate(run, workers=workers)
        facts = {
            "accepted": summary.accepted,
            "rejected": sum(summary.rejected.values()),
            "workers": summary.workers,
        }
    else:  # what curate did before it streamed: every response held, keyed by id
        held = {r.id: r for r in RunFolder(run).responses()}
        facts = {"held": len(held)}
    facts["wall"] = time.perf_counter() - started
    print(json.dumps(facts))


def _family(pid: int) -> list[int]:
    """``pid`` and its children (curate's worker processes), from /proc."""
    found = [pid]
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return found


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def measure(run: Path, mode: str, workers: int | None = None) -> dict:
    """Run a child; its wall time and peak RSS (MiB) from its own rusage."""
    extra = [] if workers is None else ["--workers", str(workers)]
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", str(run), "--mode", mode, *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    together = [0.0]  # the child and its workers at once (MiB), sampled
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            together[0] = max(together[0], sum(_rss_mib(p) for p in _family(proc.pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = proc.stdout.read() if proc.stdout else ""
    done.set()
    sampler.join()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"child {mode} failed: {out}")
    facts = json.loads(out.strip().splitlines()[-1])
    facts["peak_mib"] = usage.ru_maxrss / 1024  # KiB on Linux
    facts["all_mib"] = max(together[0], facts["peak_mib"])
    # wall time on a shared machine overstates; CPU includes the workers'
    facts["cpu"] = usage.ru_utime + usage.ru_stime
    return facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[92000, 1200000])
    parser.add_argument("--per-image", type=int, default=15)
    parser.add_argument("--self-share", type=float, default=0.163)  # ~15k of DermaSynth's 92k
    parser.add_argument("--child", type=Path)
    parser.add_argument("--mode", default="curate")
    parser.add_argument(
        "--workers", type=int, help="curate's --workers (default: curate's own choice)"
    )
    parser.add_argument(
        "--one-process",
        action="store_true",
        help="also curate the smallest size with --workers 0, side by side",
    )
    args = parser.parse_args()
    if args.child:
        child(args.child, args.mode, args.workers)
        return
    results = []
    for n in sorted(args.sizes):
        with tempfile.TemporaryDirectory(prefix="dermasynth-curate-") as tmp:
            run = Path(tmp) / "run"
            started = time.perf_counter()
            build(run, n, args.per_image, args.self_share)
            size = (run / "responses.jsonl").stat().st_size / 2**20
            print(
                f"built {n:,} responses ({size:,.0f} MiB) in {time.perf_counter() - started:.0f} s"
            )
            if not results and args.one_process:
                alone = measure(run, "curate", 0)
                print(f"  curate --workers 0: {alone['wall']:.1f} s ({alone['cpu']:.1f} s CPU)")
            facts = measure(run, "curate", args.workers)
            if not results:
                facts["held_mib"] = measure(run, "hold")["peak_mib"]
            results.append((n, facts))
            print(
                f"  curate ({facts['workers']} workers): {facts['wall']:.1f} s "
                f"({facts['cpu']:.1f} s CPU), peak {facts['peak_mib']:.0f} MiB "
                f"({facts['all_mib']:.0f} MiB with its workers), "
                f"{facts['accepted']:,} kept, {facts['rejected']:,} rejected",
                flush=True,
            )
            if not results[1:] and args.one_process:
                print(f"  one process vs workers: {alone['wall'] / facts['wall']:.2f}x the time")
    print(
        f"\n{'responses':>10} {'wall s':>8} {'CPU s':>8} {'peak MiB':>9} {'all MiB':>8} "
        f"{'wall x 10 min':>14} {'x 1 GiB':>8}"
    )
    for n, f in results:
        total = f["all_mib"]
        print(
            f"{n:>10,} {f['wall']:>8.1f} {f['cpu']:>8.1f} {f['peak_mib']:>9.0f} {total:>8.0f} "
            f"{f['wall'] / 600:>14.2f} {total / 1024:>8.2f}"
        )
    print(f"load average while measuring (2 cores, shared): {os.getloadavg()[0]:.1f}")
    (n0, f0), (n1, f1) = results[0], results[-1]
    print(f"old approach (every response held in a dict) at {n0:,}: {f0['held_mib']:.0f} MiB peak")
    if n1 != n0:
        print(
            f"{n1 / n0:.1f}x the responses: peak memory x{f1['peak_mib'] / f0['peak_mib']:.2f}, "
            f"wall time x{f1['wall'] / f0['wall']:.2f}"
        )


if __name__ == "__main__":
    main()
