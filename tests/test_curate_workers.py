"""Curation's speed-ups change nothing it writes: worker processes for the per-pair checks, and
the vectorised novelty index (exact against a full scan, long questions included)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from dermasynth_builder.cli import cli
from dermasynth_builder.curate import curate
from dermasynth_builder.curate.novelty import WIDTH, NoveltyIndex, rouge_l
from dermasynth_builder.paths import sample_root
from dermasynth_builder.plan import make_plan

FILES = ("pairs.jsonl", "rejected.jsonl", "report.json")
ANSWERS = (
    "This is most likely a {d}; the border is regular and the network is uniform throughout.",
    "It is not a {d}. The features are those of a benign nevus with a regular network.",
    "According to the provided metadata this lesion is a {d} with an irregular border.",
    "I cannot provide medical diagnoses from images.",
    "The lesion shows a {d} pattern. The patient reports itching and it has been growing.",
    "Melanoma cannot be excluded without a biopsy; the border is irregular and asymmetric.",
)


def _run(tmp_path: Path) -> Path:
    """A sample plan answered in every way a filter or a flag cares about."""
    run = tmp_path / "run"
    make_plan([("hiba", sample_root("hiba")), ("derm12345", sample_root("derm12345"))], run)
    requests = [json.loads(x) for x in (run / "requests.jsonl").read_text().splitlines()]
    rng = random.Random(3)
    rows = []
    for i, req in enumerate(requests):
        keep = ("id", "source", "image_id", "question_type", "bank", "task", "self_instruct")
        row = {k: req[k] for k in keep}
        question = req["question"]
        if req["self_instruct"]:
            question = rng.choice(
                ["What colours are visible in this lesion and what do they suggest?",
                 "Which structures at the border of this lesion suggest a melanoma here?",
                 f"How regular is the pigment network of this lesion, case {i % 3}?"]
            )  # fmt: skip
        answer = rng.choice(ANSWERS[:2] if req["self_instruct"] else ANSWERS)
        answer = answer.format(d=rng.choice(["nevus", "melanoma", "keratosis"]))
        row.update(
            instruction=req["question"],
            question=question,
            answer=f"{answer} Detail {i % 4}.",
            model="m",
            backend="fake",
            call_id=str(i),
            usage={},
        )
        rows.append(row)
    rng.shuffle(rows)  # completion order is not plan order
    (run / "responses.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def test_workers_write_the_same_files_as_one_process(tmp_path):
    run = _run(tmp_path)
    one = curate(run, workers=0, figures=False)
    alone = {n: (run / n).read_bytes() for n in FILES}
    assert one.rejected and one.accepted  # the run exercises both outcomes
    result = CliRunner().invoke(
        cli, ["curate", str(run), "--workers", "2", "--no-figures"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert {n: (run / n).read_bytes() for n in FILES} == alone
    rejected = [json.loads(x) for x in (run / "rejected.jsonl").read_text().splitlines()]
    assert {r["filter"] for r in rejected} >= {"leakage", "refusal", "grounding", "novelty"}


def test_curate_workers_option_is_checked(tmp_path):
    result = CliRunner().invoke(cli, ["curate", str(tmp_path), "--workers", "-1"])
    assert result.exit_code == 2 and "--workers" in result.output


PARENT = """
import sys
from pathlib import Path
from dermasynth_builder.curate.checks import check_all
from dermasynth_builder.curate.config import CurateConfig

def items():
    pair = {"answer": "A regular network.", "question": "q", "self_instruct": False,
            "question_type": "dense_caption", "source": "hiba", "image_id": "x", "task": "qa"}
    for i in range(600):
        yield i, dict(pair)
    print("ready", flush=True)
    sys.stdin.read()  # hold the pool open until killed

if __name__ == "__main__":
    for _ in check_all(items(), CurateConfig(), {}, Path(sys.argv[1]), 2):
        pass
"""


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_workers_leave_when_their_parent_is_killed(tmp_path):
    if not Path("/proc/self/task").is_dir():  # pragma: no cover - Linux only
        return
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    run = tmp_path / "run"
    run.mkdir()
    (run / "records.jsonl").write_text("")
    proc = subprocess.Popen(
        [sys.executable, str(script), str(run)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        workers = {c for c in _children(proc.pid) if "spawn" in _cmdline(c)}
        assert len(workers) == 2
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 30
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)  # polling for an exit the test cannot be told of
        assert not any(_alive(w) for w in workers)
    finally:
        proc.kill()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except FileNotFoundError:
        return ""


def test_novelty_index_is_exact_for_short_and_long_questions():
    rng = random.Random(9)
    vocab = "what how which lesion border colour pattern why does this image the a of in".split()
    sizes = [(4, 12)] * 250 + [(WIDTH - 8, WIDTH + 20)] * 60
    rng.shuffle(sizes)
    questions = [[rng.choice(vocab) for _ in range(rng.randint(*s))] for s in sizes]
    questions += questions[:20]  # exact repeats must be caught, long or short
    index = NoveltyIndex(0.7, questions)
    kept: list[list[str]] = []
    for q in questions:
        best, which = index.closest(q)
        scores = [rouge_l(q, k) for k in kept]
        full = max(scores, default=0.0)
        assert (best >= 0.7) == (full >= 0.7), (len(q), best, full)
        if full >= 0.7:
            assert best == full and which == scores.index(full)  # the earliest of equals
        else:
            index.add(q)
            kept.append(q)
    assert any(len(k) > WIDTH for k in kept)
    assert index.comparisons < len(questions) * len(kept) / 2
