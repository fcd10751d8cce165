"""The eval harness: a seeded benchmark from held-out labelled images, answered through the
generate engine by any backend, and scored against the labels it never shows."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from dermasynth_builder.cli import cli
from dermasynth_builder.eval import BenchmarkOptions, parse_choice, plan_eval, run_eval
from dermasynth_builder.eval.bench import in_release_test
from dermasynth_builder.eval.folder import read_key
from dermasynth_builder.options import GenerateOptions
from dermasynth_builder.plan import make_plan
from dermasynth_builder.records import MALIGNANCY
from dermasynth_builder.run import RunFolder
from tests.support import scale
from tests.support.fake_eval_model import FirstOptionModel

FAST = {"retry_base_delay": 0.01, "concurrency": 8}
OPTIONS_SEGMENT = re.compile(r"Options: .*?\. (?=Which|Is what)")


@pytest.fixture(scope="module")
def planned(tmp_path_factory) -> Path:
    """A planned run of three sources whose every second image is a held-out official test
    image (written the way `plan` writes them: heldout.jsonl beside records.jsonl)."""
    tmp = tmp_path_factory.mktemp("evalrun")
    roots = scale.build(tmp / "sources", {"hiba": 90, "pad_ufes_20": 90, "derm12345": 90}, 48)
    run = tmp / "run"
    make_plan(list(roots.items()), run)
    folder = RunFolder(run)
    records = list(folder.records())
    held = [r for i, r in enumerate(records) if i % 2 == 0]
    for r in held:
        r.split = "test"
    folder.write_heldout(held)
    folder.write_records([r for i, r in enumerate(records) if i % 2])
    return run


def test_parse_choice_reads_letters_and_option_names():
    options = ["melanoma", "melanoma in situ", "nevus"]
    assert parse_choice("B", options) == 1
    assert parse_choice("**(C)**", options) == 2
    assert parse_choice("A. melanoma", options) == 0
    assert parse_choice("The answer is B.", options) == 1
    assert parse_choice("I would pick (c) here", options) is None  # lower-case: not a citation
    assert parse_choice("This looks like a melanoma in situ.", options) == 1
    assert parse_choice("A benign-looking nevus.", options) == 2  # "A" opens a sentence
    assert parse_choice("melanoma or nevus", options) is None
    assert parse_choice("no idea", options) is None
    assert parse_choice("D", options) is None  # not an option


def test_benchmark_is_seeded_and_reproducible(planned, tmp_path):
    a = plan_eval(planned, tmp_path / "a", BenchmarkOptions(seed=3))
    b = plan_eval(planned, tmp_path / "b", BenchmarkOptions(seed=3))
    c = plan_eval(planned, tmp_path / "c", BenchmarkOptions(seed=4))
    req = "requests.jsonl"
    assert (tmp_path / "a" / req).read_bytes() == (tmp_path / "b" / req).read_bytes()
    assert a["fingerprint"]["digest"] == b["fingerprint"]["digest"] != c["fingerprint"]["digest"]
    items = read_key(RunFolder(tmp_path / "a"))
    assert {i.task for i in items} == {"diagnosis", "malignancy"}
    assert all(i.origin == "heldout" for i in items)
    assert len({i.image_id for i in items}) == 135  # every held-out image is asked about
    dx = [i for i in items if i.task == "diagnosis"]
    assert all(len(i.options) == 5 and i.gold in i.options for i in dx)
    assert Counter(i.gold_index for i in dx).keys() == set(range(5))  # the gold moves around
    pad = {
        tuple(sorted(i.options))
        for i in items
        if i.task == "malignancy" and i.source == "pad_ufes_20"
    }
    assert pad == {("benign", "indeterminate", "malignant")}


def test_release_test_split_joins_the_benchmark(planned, tmp_path):
    plan_eval(planned, tmp_path / "e", BenchmarkOptions(test_fraction=0.3, split_seed=1))
    items = read_key(RunFolder(tmp_path / "e"))
    expected = {
        (r.source, r.image_id)
        for r in RunFolder(planned).records()
        if in_release_test(r, 0.3, 1) and (r.diagnosis or r.malignancy)
    }
    got = {(i.source, i.image_id) for i in items if i.origin == "release_test"}
    assert got == expected and 20 < len(got) < 70


def test_the_packaged_release_test_split_joins_by_default(tmp_path):
    """`demo` packages with a grouped test split: eval finds that release through the run and
    asks about its labelled test images, beside the held-out official test images."""
    import pyarrow.parquet as pq

    release, run = tmp_path / "dermasynth", tmp_path / "dermasynth-run"
    subprocess.run(
        [sys.executable, "-m", "dermasynth_builder", "demo", "--out", str(release)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    info = plan_eval(run, tmp_path / "e", BenchmarkOptions())
    assert info["eval"]["release"] == str(release)
    test_rows = set()
    for path in release.glob("data/*/test-*.parquet"):
        t = pq.read_table(path, columns=["source", "image_id", "diagnosis", "malignancy"])
        test_rows |= {
            (r["source"], r["image_id"])
            for r in t.to_pylist()
            if r["diagnosis"] is not None or r["malignancy"] is not None
        }
    items = read_key(RunFolder(tmp_path / "e"))
    assert {(i.source, i.image_id) for i in items if i.origin == "release_test"} == test_rows
    assert test_rows and any(i.origin == "heldout" for i in items)
    none = plan_eval(run, tmp_path / "n", BenchmarkOptions(release=""))
    assert none["eval"]["images"]["release_test"] == 0


def test_offline_backend_scores_at_chance_and_sees_no_label(planned, tmp_path):
    out = tmp_path / "offline"
    report = run_eval(planned, out, BenchmarkOptions(), GenerateOptions(backend="offline"))
    for row in RunFolder(out).records():  # what the offline backend reads: no label at all
        assert row.diagnosis is row.malignancy is row.age is row.sex is None
        assert not row.diagnosis_hierarchy and not row.extra
    n = sum(r["n"] for r in report["results"])
    correct = sum(r["correct"] for r in report["results"])
    chance = sum(r["chance"] * r["n"] for r in report["results"]) / n
    sd = (chance * (1 - chance) / n) ** 0.5
    assert n == 270 and abs(correct / n - chance) < 3 * sd, (correct / n, chance)
    assert all(r["unparsed"] == r["n"] for r in report["results"])  # it never names an option
    saved = json.loads((out / "eval.json").read_text())
    assert {(r["source"], r["task"]) for r in saved["results"]} == {
        (s, t) for s in ("derm12345", "hiba", "pad_ufes_20") for t in ("diagnosis", "malignancy")
    }
    for r in saved["results"]:
        assert set(r) >= {"source", "task", "n", "correct", "accuracy", "macro_f1", "chance"}
    attributes = {(g["source"], g["attribute"]) for g in saved["subgroups"]}
    assert ("hiba", "fitzpatrick") in attributes and ("pad_ufes_20", "age_band") in attributes
    assert (out / "figures" / "confusion-hiba-diagnosis.png").stat().st_size > 1000
    assert "| hiba | diagnosis |" in (out / "eval.md").read_text()


def test_first_option_model_scores_the_first_options_frequency_and_no_prompt_leaks(
    planned, tmp_path
):
    out = tmp_path / "first"
    with FirstOptionModel() as fake:
        options = GenerateOptions(backend="openai", model="m", base_url=fake.url + "/v1", **FAST)
        report = run_eval(planned, out, BenchmarkOptions(), options)
        log = list(fake.log)
    items = read_key(RunFolder(out))
    for r in report["results"]:
        mine = [i for i in items if (i.source, i.task) == (r["source"], r["task"])]
        assert r["correct"] == sum(i.gold_index == 0 for i in mine) and r["unparsed"] == 0
    assert len(log) == len(items)  # one question per call: no question sees another's options
    by_question = {i.question: i for i in items}
    records = {(r.source, r.image_id): r for r in RunFolder(planned).heldout()}
    stripped: dict[str, set[str]] = {}
    for entry in log:
        text = json.dumps(entry["body"])
        item = next(i for q, i in by_question.items() if json.dumps(q)[1:-1] in text)
        record = records[(item.source, item.image_id)]
        assert record.image_path not in text and record.image_id not in text
        rest = OPTIONS_SEGMENT.sub("", text)
        assert rest != text  # the options were found and removed
        stripped.setdefault(item.task, set()).add(re.sub(r"data:image/[^\"]+", "", rest))
        labels = [record.diagnosis, record.diagnosis_code, *record.diagnosis_hierarchy]
        for label in filter(None, labels):
            if item.task == "diagnosis" or label.lower() not in MALIGNANCY:
                assert not re.search(rf"\b{re.escape(label)}\b", rest, re.I), (label, rest)
    # apart from the image and the (shuffled) options, every prompt of a task is the same
    # up to the kind of image, so nothing in it can carry the label
    assert all(len(texts) <= 2 for texts in stripped.values()), stripped


def _count_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_answers_never_in_the_json_form_count_as_guesses(planned, tmp_path):
    """A served model that ignores the JSON schema (plain "B") ends as content failures: it
    answered, so each such question is a seeded guess in n (unparsed), not a hole."""
    out = tmp_path / "plain"
    with FirstOptionModel(answer="B", plain=True) as fake:
        options = GenerateOptions(backend="openai", model="m", base_url=fake.url + "/v1", **FAST)
        report = run_eval(planned, out, BenchmarkOptions(limit=20), options)
    assert [f.kind for f in RunFolder(out).failures()] == ["content"] * len(
        read_key(RunFolder(out))
    )
    for r in report["results"]:
        assert r["n"] == r["unparsed"] == 20 and r["failed"] == 0
    assert report["off_form"] == 120 and "120 answers never came" in (out / "eval.md").read_text()


def test_kill_and_resume_answers_every_question_exactly_once(planned, tmp_path):
    out = tmp_path / "resume"
    base = [sys.executable, "-m", "dermasynth_builder", "eval", str(planned), "--out", str(out)]
    with FirstOptionModel(latency=0.02) as fake:
        cmd = [*base, "--backend", "openai", "--model", "m", "--base-url", fake.url + "/v1"]
        cmd += ["--concurrency", "4", "--retry-base-delay", "0.01"]
        for target in (40, 120):
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 120
            while _count_lines(out / "responses.jsonl") < target and proc.poll() is None:
                assert time.monotonic() < deadline, "eval made no progress"
                time.sleep(0.005)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            assert proc.returncode == -signal.SIGKILL, "eval finished before it could be killed"
        asked_before = fake.stats["requests"]
        final = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        asked_after = fake.stats["requests"]
        other = subprocess.run(
            [*cmd[:-8], "--backend", "openai", "--model", "other", "--base-url", fake.url + "/v1"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert final.returncode == 0, final.stderr
    items = read_key(RunFolder(out))
    ids = Counter(json.loads(x)["id"] for x in (out / "responses.jsonl").read_text().splitlines())
    assert ids == Counter(i.id for i in items), "some question is missing or answered twice"
    assert asked_after - asked_before < len(items) - 100  # only the rest was asked again
    report = json.loads((out / "eval.json").read_text())
    assert sum(r["n"] for r in report["results"]) == len(items)
    assert other.returncode == 2 and "holds answers of openai/m" in other.stderr
    assert len(other.stderr.strip().splitlines()) == 1


def test_compare_prints_eval_folders_side_by_side(planned, tmp_path):
    for name, answer in (("a", "A"), ("b", "B")):
        with FirstOptionModel(answer=answer) as fake:
            opts = GenerateOptions(backend="openai", model=f"m-{name}", base_url=fake.url + "/v1")
            run_eval(
                planned, tmp_path / name, BenchmarkOptions(limit=10), opts.model_copy(update=FAST)
            )
    result = CliRunner().invoke(
        cli, ["eval", "--compare", str(tmp_path / "a"), str(tmp_path / "b")], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    assert "m-a" in result.output and "m-b" in result.output
    assert result.output.count("diagnosis") == 3 and "%" in result.output


def test_cli_errors_are_one_line(planned, tmp_path):
    runner = CliRunner()
    empty = tmp_path / "empty"
    make_plan([("hiba", Path(RunFolder(planned).info()["plan"]["sources"]["hiba"]["root"]))], empty)
    cases = [
        ["eval", str(empty), "--out", str(tmp_path / "x"), "--backend", "offline"],
        ["eval", str(planned)],
        ["eval", "--compare", str(tmp_path / "nothing")],
        ["eval", str(planned), "--out", str(tmp_path / "y"), "--backend", "openai"],
    ]
    for args in cases:
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output


def test_open_answers_are_scored_with_the_agreement_scorer(monkeypatch):
    """The open question uses the public scorer's contract (dermasynth_builder.agreement):
    a share of answers that agree with the label; no call counts as no agreement."""
    import types

    from dermasynth_builder.eval.bench import Item
    from dermasynth_builder.eval.score import score

    fake = types.ModuleType("dermasynth_builder.agreement")

    def score_answer(answer, *, diagnosis=None, malignancy=None):
        said = answer.lower()
        return {
            "label_consistent": (diagnosis in said) if "not sure" not in said else None,
            "malignancy_consistent": (malignancy in said) if malignancy in said else None,
        }

    fake.score_answer = score_answer
    monkeypatch.setitem(sys.modules, "dermasynth_builder.agreement", fake)
    common = {"source": "hiba", "task": "open", "question": "q", "malignancy": "benign"}
    rows = [
        (Item("1", image_id="a", diagnosis="nevus", **common), "A benign nevus.", None),
        (Item("2", image_id="b", diagnosis="nevus", **common), "A melanoma.", None),
        (Item("3", image_id="c", diagnosis="nevus", **common), "Not sure.", None),
        (Item("4", image_id="d", diagnosis="nevus", **common), None, "final"),
    ]
    result = score(rows, seed=0)
    assert result["open"] == [
        {
            "source": "hiba",
            "task": "open",
            "n": 3,
            "label_consistent": round(1 / 3, 4),
            "malignancy_consistent": round(1 / 3, 4),
        }
    ]
    assert result["results"] == []  # open answers are not multiple-choice results
