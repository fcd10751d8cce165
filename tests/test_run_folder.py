"""The run folder as a contract: typed rows, the lock, the plan fingerprint, step state."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from dermasynth_builder.cli import cli
from dermasynth_builder.paths import sample_root, templates_dir
from dermasynth_builder.plan import make_plan
from dermasynth_builder.run import (
    Failure,
    Pair,
    Request,
    Response,
    RunFolder,
    RunFolderError,
    RunLockedError,
    SchemaError,
)
from tests.support import scale
from tests.support.fake_gemini import FakeGemini

KEY = "test-key-run-folder-0123456789"


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_rows_round_trip_and_reject_unknown_fields():
    req = Request("r1", "hiba", "ISIC_1", "ISIC_1.jpg", "overview", "qa", "Describe it.")
    assert Request.from_dict(req.to_dict()) == req
    resp = Response("r1", "hiba", "ISIC_1", "overview", "qa", "q", "q", "a", "m", "fake", "c")
    assert Response.from_dict(json.loads(json.dumps(resp.to_dict()))) == resp
    fail = Failure("r1", "hiba", "ISIC_1", "overview", "qa", "final", "SAFETY", 1, "fake", "m")
    assert Failure.from_dict(fail.to_dict()) == fail
    with pytest.raises(SchemaError, match="unknown field"):
        Pair.from_dict({**Pair.join(resp, None, "v1").to_dict(), "surprise": 1})
    with pytest.raises(SchemaError, match="missing"):
        Response.from_dict({"id": "r1"})


def test_a_bad_line_names_its_file_and_line(tmp_path):
    folder = RunFolder(tmp_path)
    (tmp_path / "responses.jsonl").write_text('{"id": "x", "oops": 1}\n')
    with pytest.raises(RunFolderError, match=r"responses.jsonl, line 1: .*oops"):
        list(folder.responses())


def test_the_lock_refuses_a_second_process_and_names_the_holder(tmp_path):
    folder = RunFolder(tmp_path / "run")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from dermasynth_builder.run import RunFolder\n"
            f"with RunFolder({str(folder.path)!r}).lock('generate'):\n"
            "    print('held', flush=True); sys.stdin.readline()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError) as caught, folder.lock("curate"):
            pass
        message = str(caught.value)
        assert "`dermasynth generate`" in message and f"pid {holder.pid}" in message
        assert "\n" not in message
        result = invoke("curate", folder.path)
        assert result.exit_code == 2 and "in use by" in result.output
    finally:
        holder.kill()  # a dead holder's lock is released by the kernel ...
        holder.wait()
    with folder.lock("curate"):  # ... and taken over at once
        pass


def test_two_generate_processes_the_second_refuses_nothing_twice(tmp_path):
    roots = scale.build(tmp_path / "src", {"hiba": 40}, image_size=64)
    run = tmp_path / "run"
    make_plan(list(roots.items()), run)
    planned = [r["id"] for r in lines(run / "requests.jsonl")]
    cmd = [sys.executable, "-m", "dermasynth_builder", "generate", str(run), "--concurrency", "2"]
    with FakeGemini(latency=0.05, keep_image_data=False) as fake:
        env = {**os.environ, "GEMINI_API_KEY": KEY, "GOOGLE_GEMINI_BASE_URL": fake.url}
        first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not (run / "responses.jsonl").exists() or not lines(run / "responses.jsonl"):
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        assert first.wait(timeout=120) == 0, first.stderr.read()
    assert second.returncode == 2
    assert "in use by `dermasynth generate`" in second.stderr and "Traceback" not in second.stderr
    ids = Counter(r["id"] for r in lines(run / "responses.jsonl") + lines(run / "failures.jsonl"))
    assert ids == Counter(planned)
    images = {(r["source"], r["image_id"]) for r in lines(run / "requests.jsonl")}
    assert fake.stats["requests"] == len(images)  # one call per image, none twice


def _generate_offline(run: Path) -> None:
    result = invoke("generate", run, "--backend", "offline")
    assert result.exit_code == 0, result.output


def test_replanning_over_results_refuses_or_moves_them_aside(tmp_path):
    run = tmp_path / "run"
    assert invoke("plan", "--source", f"hiba={sample_root('hiba')}", "--out", run).exit_code == 0
    _generate_offline(run)
    assert invoke("curate", run).exit_code == 0
    before = {p.name: p.read_bytes() for p in run.glob("*.jsonl")}
    info = json.loads((run / "run.json").read_text())

    # the same plan again keeps every result and every run.json section
    assert invoke("plan", "--source", f"hiba={sample_root('hiba')}", "--out", run).exit_code == 0
    assert {p.name: p.read_bytes() for p in run.glob("*.jsonl")} == before
    assert json.loads((run / "run.json").read_text()) == info

    # another plan refuses, naming the way out, and changes nothing
    other = invoke("plan", "--source", f"hiba={sample_root('hiba')}", "--out", run, "--limit", "1")
    assert other.exit_code == 2 and "--fresh" in other.output and "limit" in other.output
    assert {p.name: p.read_bytes() for p in run.glob("*.jsonl")} == before

    fresh = invoke(
        "plan", "--source", f"hiba={sample_root('hiba')}", "--out", run, "--limit", "1", "--fresh"
    )
    assert fresh.exit_code == 0, fresh.output
    [aside] = run.glob("replaced-*")
    assert (aside / "responses.jsonl").read_bytes() == before["responses.jsonl"]
    assert not (run / "responses.jsonl").exists() and not (run / "pairs.jsonl").exists()
    result = invoke("generate", run, "--backend", "offline")
    assert result.exit_code == 0 and "already done" in result.output
    assert len(lines(run / "responses.jsonl")) == len(lines(run / "requests.jsonl")) == 2


def test_package_needs_a_current_curation(tmp_path):
    run = tmp_path / "run"
    make_plan([("hiba", sample_root("hiba"))], run)
    _generate_offline(run)
    result = invoke("package", run, "--out", tmp_path / "release")
    assert result.exit_code == 2 and "curate" in result.output
    assert not (tmp_path / "release").exists()


def test_generate_refuses_a_plan_whose_templates_changed(tmp_path):
    run = tmp_path / "run"
    make_plan([("hiba", sample_root("hiba"))], run)
    copy = tmp_path / "templates"
    shutil.copytree(templates_dir(), copy)
    folder = RunFolder(run)
    folder.check_plan(copy)  # unchanged: fine
    (copy / "request.j2").write_text((copy / "request.j2").read_text() + "\nAnswer briefly.\n")
    with pytest.raises(RunFolderError, match=r"request\.j2.*--fresh"):
        folder.check_plan(copy)
    (run / "requests.jsonl").write_text((run / "requests.jsonl").read_text()[:-200])
    with pytest.raises(RunFolderError, match="changed since it was planned"):
        folder.check_plan()


def _config(tmp_path: Path, root: Path) -> Path:
    config = tmp_path / "CONFIG.toml"
    config.write_text(
        f'run = "run"\n[sources]\nhiba = "{root}"\n[generate]\nbackend = "offline"\n'
        '[package]\nout = "release"\n'
    )
    return config


def test_run_twice_over_a_symlinked_root_replans_nothing(tmp_path):
    link = tmp_path / "hiba-link"
    link.symlink_to(sample_root("hiba"), target_is_directory=True)
    config = _config(tmp_path, link)
    first = invoke("run", config)
    assert first.exit_code == 0, first.output
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert {"generation", "curation", "steps"} <= set(info)
    assert set(info["steps"]) == {"plan", "generate", "curate", "package"}
    second = invoke("run", config)
    assert second.exit_code == 0, second.output
    assert second.output.count("skipped (already done)") == 4, second.output
    assert json.loads((tmp_path / "run" / "run.json").read_text()) == info


def _wait_for(predicate, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 120
    while not predicate():
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)


def _steps(run: Path) -> set[str]:
    try:
        return set(json.loads((run / "run.json").read_text()).get("steps", {}))
    except (OSError, ValueError):
        return set()


@pytest.mark.parametrize("stage", ["curate", "package"])
def test_kill_9_inside_run_then_rerun_gives_a_complete_release(tmp_path, stage):
    roots = scale.build(tmp_path / "src", {"hiba": 60}, image_size=64)
    config = _config(tmp_path, roots["hiba"])
    run, release = tmp_path / "run", tmp_path / "release"
    cmd = [sys.executable, "-m", "dermasynth_builder", "run", str(config)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done_before = {"curate": {"plan", "generate"}, "package": {"plan", "generate", "curate"}}
    _wait_for(lambda: _steps(run) == done_before[stage], proc, f"{stage} began")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert stage not in _steps(run)  # a step killed half-way is never counted as done
    final = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr
    assert f"{stage}: done" in final.stdout
    card = (release / "README.md").read_text()
    assert "configs:" in card and "hiba" in card
    info = json.loads((run / "run.json").read_text())
    assert info["curation"]["accepted"] > 0
    assert set(info["steps"]) == {"plan", "generate", "curate", "package"}
    leftovers = [p.name for p in run.glob("*.tmp")] + [
        p.name for p in tmp_path.iterdir() if p.name.startswith(".release")
    ]
    assert leftovers == []
