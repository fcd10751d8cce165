"""Benchmark `dermasynth curate` at the paper's scale: 92,000 responses, ~15,000 of them with
model-written (self-instruct) questions, against the 2-minute target.

It writes a synthetic run folder (records, requests, responses; no images are needed), runs the
real curate step and prints its wall time, and the LCS comparisons the novelty filter ran next to
the number a full scan (each question against every kept question of its source) would need.

    python bench/curate.py [--responses 92000] [--self-instruct 15000]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support
from dermasynth_builder.curate import curate
from dermasynth_builder.run import RunFolder, write_json_atomic, write_jsonl_atomic
from dermasynth_builder.run.fingerprint import file_digest

SOURCES = ("derm12345", "bcn20000", "pad_ufes_20", "scin", "hiba")
WH = ("What", "Which", "How", "Why", "Where", "When would", "In what way does", "Could")
FEATURES = (
    "border",
    "colour pattern",
    "pigment network",
    "vessels",
    "surface scale",
    "symmetry",
    "dots and globules",
    "regression structures",
    "ulceration",
    "blue-white veil",
    "hair follicles",
    "streaks",
    "size",
    "elevation",
    "crust",
)
VERBS = (
    "suggest",
    "indicate",
    "change",
    "support",
    "argue against",
    "help distinguish",
    "influence",
    "point to",
    "matter for",
    "affect",
)
TAILS = (
    "the diagnosis",
    "the next step",
    "follow-up",
    "a biopsy decision",
    "referral",
    "the likely lesion type",
    "the patient's concern",
    "dermoscopic assessment",
    "risk of malignancy",
    "management",
)
WORDS = (
    "lesion border colour brown pink macule papule network vessels scale surface regular "
    "irregular asymmetric symmetric pattern dots globules streaks dermoscopy biopsy benign "
    "features suggest consistent with appearance central peripheral area shows visible "
    "follow up examination skin image finding uniform variegated raised flat"
).split()


VOCAB = WORDS + [
    f"{a}{b}"
    for a in ("pa", "ke", "ro", "mi", "su", "ta", "lo", "ve", "ni", "da")
    for b in ("rin", "tol", "mex", "dun", "sal", "vor", "pek", "lim", "gar", "tus")
]


def question(rng: random.Random) -> str:
    """Seven in ten questions are diverse (as a good model's are); three in ten come from a small
    grammar and so repeat each other, which the novelty filter must catch."""
    if rng.random() < 0.7:
        return f"{rng.choice(WH)} {' '.join(rng.choices(VOCAB, k=rng.randint(6, 14)))}?"
    return (
        f"{rng.choice(WH)} the {rng.choice(FEATURES)} in this image {rng.choice(VERBS)} "
        f"{rng.choice(TAILS)}?"
    )


def build(run: Path, n_responses: int, n_self: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    run.mkdir(parents=True)
    n_images = n_responses // 2
    records, requests, responses = [], [], []
    self_every = n_responses / n_self
    for i in range(n_images):
        source = SOURCES[i % len(SOURCES)]
        image_id = f"IMG_{i:06d}"
        records.append(
            {
                "source": source,
                "image_id": image_id,
                "image_path": f"{image_id}.jpg",
                "modality": "dermoscopic",
                "license": "CC BY 4.0",
                "attribution": "bench",
                "diagnosis": rng.choice(["nevus", "melanoma", "basal cell carcinoma", None]),
                "diagnosis_code": None,
                "diagnosis_hierarchy": [],
                "malignancy": None,
                "age": 50,
                "sex": "female",
                "anatomic_site": "back",
                "fitzpatrick_skin_type": None,
                "symptoms": [],
                "textures": [],
                "body_parts": [],
                "differential": {},
                "group_id": f"G{i // 3}",
                "split": None,
                "extra": {},
            }
        )
        for slot in range(2):
            k = len(requests)
            is_self = int((k + 1) / self_every) > int(k / self_every)
            rid = f"r{k:07d}"
            qtype = "self_instruct" if is_self else rng.choice(["what_is_it", "visual_features"])
            requests.append(
                {
                    "id": rid,
                    "source": source,
                    "image_id": image_id,
                    "image_path": f"{image_id}.jpg",
                    "slot": slot,
                    "question_type": qtype,
                    "self_instruct": is_self,
                    "task": "qa",
                    "question": "planned question",
                    "bank": "general",
                }
            )
            answer = " ".join(rng.choices(WORDS, k=rng.randint(25, 90))) + "."
            responses.append(
                {
                    "id": rid,
                    "source": source,
                    "image_id": image_id,
                    "question_type": qtype,
                    "bank": "general",
                    "task": "qa",
                    "self_instruct": is_self,
                    "instruction": "planned question",
                    "question": question(rng) if is_self else "planned question",
                    "answer": answer,
                    "model": "bench",
                    "backend": "bench",
                    "call_id": rid,
                    "usage": {},
                }
            )
    rng.shuffle(responses)  # completion order is not plan order
    write_jsonl_atomic(run / "records.jsonl", records)
    write_jsonl_atomic(run / "requests.jsonl", requests)
    write_jsonl_atomic(run / "responses.jsonl", responses)
    write_json_atomic(
        run / "run.json",
        {"plan": {}, "templates": {"version": "bench"}, "fingerprint": {"digest": "bench"}},
    )
    RunFolder(run).finish_step("plan", requests_sha256=file_digest(run / "requests.jsonl"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=92000)
    parser.add_argument("--self-instruct", type=int, default=15000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dermasynth-curate-") as tmp:
        run = Path(tmp) / "run"
        build(run, args.responses, args.self_instruct)
        started = time.perf_counter()
        summary = curate(run)
        wall = time.perf_counter() - started
        kept_self = {}
        for line in (run / "pairs.jsonl").open():
            row = json.loads(line)
            if row["self_instruct"]:
                kept_self[row["source"]] = kept_self.get(row["source"], 0) + 1
    # a full scan compares each question with every question kept before it in its source
    full_scan = 0
    per_source = args.self_instruct / len(SOURCES)
    for kept in kept_self.values():
        full_scan += int(per_source * kept - kept * kept / 2)  # sum over questions of kept-so-far
    print(
        f"{summary.responses:,} responses ({args.self_instruct:,} self-instruct): "
        f"{summary.accepted:,} kept, {sum(summary.rejected.values()):,} rejected"
    )
    for (name, reason), n in sorted(summary.rejected.items(), key=lambda kv: -kv[1]):
        print(f"  {name}: {reason}: {n:,}")
    print(f"curate wall time: {wall:.1f} s = {wall / 120:.2f} x the 2-minute target")
    print(
        f"novelty: {summary.novelty_candidates:,} candidate pairs from the prefix index, "
        f"{summary.novelty_comparisons:,} LCS comparisons, vs ~{full_scan:,} LCS for a full scan "
        f"(candidates {summary.novelty_candidates / max(1, full_scan):.4f} of it)"
    )


if __name__ == "__main__":
    main()
