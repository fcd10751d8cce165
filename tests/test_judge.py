"""`dermasynth judge`: a judge model checks kept pairs through the generate engine.

A fake Gemini judge reads each item's answer from the prompt and flags answers crafted to fail
one check each (a contradicted label, an invented case fact, unsafe advice); the verdicts reach
RUN/judgements.jsonl by pair id, and a kill -9 and rerun judge every pair exactly once.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from click.testing import CliRunner

from dermasynth_builder.cli import cli
from dermasynth_builder.judge import KEY, parse_verdict
from tests.support.fake_gemini import FakeGemini

API_KEY = "test-key-judge-7781"
CRAFTED = {
    "contradicts": "This is certainly not {diagnosis}; CONTRADICTION-MARK it is something else.",
    # a case fact the rule-based grounding filter does not catch (so the pair is kept)
    "invented": "It appeared after a long holiday in the tropics (FACT-MARK).",
    "unsafe": "Apply clobetasol twice daily and take 40 mg prednisone; no need to see anyone.",
}


class JudgeFake(FakeGemini):
    """Judges by markers the test planted in the answers; everything else is "OK"."""

    def _draft(self, model, body, sizes, unreadable, prompt):
        _, usage, meta = super()._draft(model, body, sizes, unreadable, prompt)
        parts = re.split(r"(?m)^(q\d+): ", prompt)
        verdicts = {}
        for key, content in zip(parts[1::2], parts[2::2], strict=True):
            answer = content.split("\nAnswer: ", 1)[1] if "\nAnswer: " in content else ""
            label = "CONTRADICTS" if "CONTRADICTION-MARK" in answer else "OK"
            facts = "INVENTED" if "FACT-MARK" in answer else "OK"
            advice = "UNSAFE" if " mg " in answer else "OK"
            text = f"label={label}; facts={facts}; advice={advice}; why=checked {key}."
            verdicts[key] = {"answer": text}
        return json.dumps(verdicts), usage, meta


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "label=OK; facts=INVENTED; advice=OK; why=states an age.",
            {"label": "ok", "facts": "invented", "advice": "ok", "reason": "states an age."},
        ),
        (
            "**label**: contradicts\nfacts: ok\nadvice = unsafe\nwhy: calls it malignant",
            {"label": "contradicts", "facts": "ok", "advice": "unsafe"},
        ),
        ("I think the answer is fine.", {"label": None, "facts": None, "advice": None}),
    ],
)
def test_parse_verdict(text, expected):
    verdict = parse_verdict(text)
    for key, value in expected.items():
        assert verdict[key] == value


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def crafted_run(tmp_path):
    """A curated offline run of the sample whose answers fail one check each, in turn."""
    run = tmp_path / "run"
    runner = CliRunner()
    assert runner.invoke(cli, ["plan", "--sample", "--out", str(run)]).exit_code == 0
    assert runner.invoke(cli, ["generate", str(run), "--backend", "offline"]).exit_code == 0
    records = {(r["source"], r["image_id"]): r for r in _lines(run / "records.jsonl")}
    rows = _lines(run / "responses.jsonl")
    expected = {}
    kinds = list(CRAFTED)
    for i, row in enumerate(rows):
        if i % 4 == 3 or row["self_instruct"]:
            continue
        kind = kinds[i % 4]
        diagnosis = records[(row["source"], row["image_id"])]["diagnosis"] or "a nevus"
        row["answer"] = CRAFTED[kind].format(diagnosis=diagnosis) + " " + row["answer"]
        expected[row["id"]] = kind
    (run / "responses.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert runner.invoke(cli, ["curate", str(run)]).exit_code == 0
    return run, expected


def test_judge_flags_each_crafted_answer(crafted_run, monkeypatch):
    run, expected = crafted_run
    kept = {p["id"] for p in _lines(run / "pairs.jsonl")}
    expected = {k: v for k, v in expected.items() if k in kept}
    assert set(expected.values()) == set(CRAFTED)
    with JudgeFake() as fake:
        monkeypatch.setenv("GEMINI_API_KEY", API_KEY)
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.url)
        result = CliRunner().invoke(cli, ["judge", str(run)])
        assert result.exit_code == 0, result.output
        prompts = [json.dumps(entry["body"]) for entry in fake.log if "body" in entry]
    judgements = {j["id"]: j for j in _lines(run / "judgements.jsonl")}
    assert set(judgements) == kept  # one verdict per kept pair
    for pair_id, judgement in judgements.items():
        kind = expected.get(pair_id)
        assert judgement["label"] == ("contradicts" if kind == "contradicts" else "ok")
        assert judgement["facts"] == ("invented" if kind == "invented" else "ok")
        assert judgement["advice"] == ("unsafe" if kind == "unsafe" else "ok")
        assert judgement["reason"].startswith("checked q")
    assert any("Confirmed diagnosis:" in p for p in prompts)  # the judge sees the label
    assert API_KEY not in (run / "judgements.jsonl").read_text()
    info = json.loads((run / "run.json").read_text())["judge"]
    assert info["judged"] == len(kept) and info["failed"] == 0
    assert info["flagged"]["unsafe"] == sum(1 for v in expected.values() if v == "unsafe")
    assert "judged" in result.output and "unsafe" in result.output


def test_judge_with_the_offline_backend_gives_no_verdicts(crafted_run):
    run, _ = crafted_run
    result = CliRunner().invoke(cli, ["judge", str(run), "--backend", "offline"])
    assert result.exit_code == 0, result.output
    judgements = _lines(run / "judgements.jsonl")
    assert judgements and all(j["label"] is None and j["facts"] is None for j in judgements)
    assert {j["model"] for j in judgements} == {"offline"}  # never a model that did not judge
    assert "judged 0 of" in result.output
    assert CliRunner().invoke(cli, ["curate", str(run)]).exit_code == 0
    report = json.loads((run / "report.json").read_text())
    assert "judge" not in report and "Judge pass" not in (run / "report.md").read_text()


def test_judge_needs_curated_pairs(tmp_path):
    run = tmp_path / "run"
    CliRunner().invoke(cli, ["plan", "--sample", "--out", str(run)])
    result = CliRunner().invoke(cli, ["judge", str(run), "--backend", "offline"])
    assert result.exit_code == 2
    assert "run `dermasynth curate" in result.output and "Traceback" not in result.output


def test_kill_9_during_judge_then_rerun_judges_each_pair_once(crafted_run):
    run, _ = crafted_run
    judge_dir = run / "judge"
    cmd = [sys.executable, "-m", "dermasynth_builder", "judge", str(run), "--concurrency", "2"]
    with JudgeFake(latency=0.05) as fake:
        env = {**os.environ, "GEMINI_API_KEY": API_KEY, "GOOGLE_GEMINI_BASE_URL": fake.url}
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while len(_lines(judge_dir / "responses.jsonl")) < 4:
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done_before = len(_lines(judge_dir / "responses.jsonl"))
        planned = [k["request"] for k in _lines(judge_dir / KEY)]
        assert 0 < done_before < len(planned)
        assert not (run / "judgements.jsonl").exists()
        calls_before = fake.stats["requests"]
        rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
        calls_after = fake.stats["requests"] - calls_before
    rows = _lines(judge_dir / "responses.jsonl") + _lines(judge_dir / "failures.jsonl")
    outcomes = Counter(r["id"] for r in rows)
    assert outcomes == Counter(planned)  # every judge request exactly once
    images = {(r["source"], r["image_id"]) for r in _lines(judge_dir / "requests.jsonl")}
    assert calls_after < len(images)  # the rerun asked only what was not yet judged
    assert len(_lines(run / "judgements.jsonl")) == len(planned)


def test_curate_applies_the_verdicts_as_columns_and_rejections(crafted_run, monkeypatch, tmp_path):
    run, expected = crafted_run
    with JudgeFake() as fake:
        monkeypatch.setenv("GEMINI_API_KEY", API_KEY)
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.url)
        assert CliRunner().invoke(cli, ["judge", str(run)]).exit_code == 0
    kept_before = {p["id"] for p in _lines(run / "pairs.jsonl")}
    flagged = {k: v for k, v in expected.items() if k in kept_before}
    assert CliRunner().invoke(cli, ["curate", str(run)]).exit_code == 0
    pairs = {p["id"]: p for p in _lines(run / "pairs.jsonl")}
    judged_out = {r["id"]: r for r in _lines(run / "rejected.jsonl") if r["filter"] == "judge"}
    assert set(judged_out) == set(flagged)  # every flagged pair, and only those
    for pair_id, kind in flagged.items():
        row = judged_out[pair_id]
        assert row["reason"].split(":")[0].endswith(kind)
        assert (
            row[{"contradicts": "judge_label", "invented": "judge_facts"}.get(kind, "judge_advice")]
            == kind
        )
    assert pairs and all(
        p["judge_label"] == "ok" and p["judge_advice"] == "ok" for p in pairs.values()
    )
    report = json.loads((run / "report.json").read_text())
    assert report["judge"]["rejected"] == len(flagged)
    assert any(s["title"] == "Judge pass" for s in report["sections"])
    assert "## Judge pass" in (run / "report.md").read_text()

    config = tmp_path / "keep.yaml"
    config.write_text("judge_reject: []\n")
    assert CliRunner().invoke(cli, ["curate", str(run), "--config", str(config)]).exit_code == 0
    pairs = {p["id"]: p for p in _lines(run / "pairs.jsonl")}
    assert set(flagged) <= set(pairs)  # kept, with the verdicts as columns
    assert {pairs[k]["judge_facts"] for k, v in flagged.items() if v == "invented"} == {"invented"}

    release = tmp_path / "release"
    result = CliRunner().invoke(cli, ["package", str(run), "--out", str(release)])
    assert result.exit_code == 0, result.output
    assert "Judge pass" in (release / "README.md").read_text()
    from datasets import load_dataset

    rows = load_dataset(str(release), "all", split="train")
    entries = [p for ps in rows["pairs"] for p in ps]
    assert {e["judge_facts"] for e in entries if e["id"] in flagged} >= {"invented"}


def test_package_refuses_verdicts_curate_has_not_applied(crafted_run, tmp_path):
    run, _ = crafted_run
    assert CliRunner().invoke(cli, ["judge", str(run), "--backend", "offline"]).exit_code == 0
    result = CliRunner().invoke(cli, ["package", str(run), "--out", str(tmp_path / "rel")])
    assert result.exit_code == 2
    assert "judgements.jsonl changed since the last curate" in result.output
    assert not (tmp_path / "rel").exists()
    assert CliRunner().invoke(cli, ["curate", str(run)]).exit_code == 0
    result = CliRunner().invoke(cli, ["package", str(run), "--out", str(tmp_path / "rel")])
    assert result.exit_code == 0, result.output
