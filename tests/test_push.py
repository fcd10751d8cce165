"""Push a release to a fake Hub on 127.0.0.1 with the real huggingface_hub client, then read it
back with load_dataset through the same endpoint (both in subprocesses: the endpoint is read at
import time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dermasynth_builder.curate import curate
from dermasynth_builder.engine import Engine, GenerateOptions
from dermasynth_builder.package import package
from dermasynth_builder.paths import sample_root
from dermasynth_builder.plan import make_plan
from tests.support.fake_hub import FakeHub

TOKEN = "hf_fake_token_7c41a9"
READ_BACK = """
import json, sys
import datasets
datasets.disable_progress_bars()
out = {}
for config in ["all", "derm12345", "bcn20000", "pad_ufes_20", "scin", "hiba"]:
    ds = datasets.load_dataset(sys.argv[1], config)
    first = ds["train"][0]
    image = first["images"][0]
    out[config] = {"rows": sum(len(s) for s in ds.values()), "image": type(image).__name__}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("push")
    run = root / "run"
    make_plan(
        [(s, sample_root(s)) for s in ("scin", "hiba", "derm12345", "bcn20000", "pad_ufes_20")], run
    )
    Engine(run, GenerateOptions(backend="offline")).run_sync()
    curate(run, figures=False)
    out = root / "dermasynth"
    built = package(run, out)
    return out, {c: sum(s.values()) for c, s in built.rows.items()}


def env_for(hub, tmp_path, token=TOKEN):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HUB_DISABLE_XET="1",
        HF_HOME=str(tmp_path / "hf"),
        HF_DATASETS_CACHE=str(tmp_path / "hf" / "ds"),
    )
    if token:
        env["HF_TOKEN"] = token
    return env


def dermasynth(*args, env):
    cmd = [sys.executable, "-m", "dermasynth_builder", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def test_push_and_read_back(release, tmp_path):
    folder, rows = release
    with FakeHub(token=TOKEN) as hub:
        env = env_for(hub, tmp_path)
        refused = dermasynth("push", str(folder), "--repo-id", "tester/dermasynth", env=env)
        assert refused.returncode == 2 and "offline backend" in refused.stderr
        assert "--allow-offline" in refused.stderr
        assert not [e for e in hub.log if e["method"] in ("POST", "PUT")]
        result = dermasynth(
            "push", str(folder), "--repo-id", "tester/dermasynth", "--allow-offline", env=env
        )
        assert result.returncode == 0, result.stderr
        assert TOKEN not in result.stdout + result.stderr
        files = hub.files("tester/dermasynth")
        local = {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".")  # the local release marker stays home
        }
        card = files.pop("README.md").decode()
        assert files == {k: v for k, v in local.items() if k != "README.md"}
        assert ".dermasynth-release.json" in os.listdir(folder)
        # the pushed card names the real repo; the local one is left as package wrote it
        assert 'load_dataset("tester/dermasynth", "scin")' in card and "<org>" not in card
        assert "<org>/dermasynth" in local["README.md"].decode()
        assert card.count("Offline test release") == 1
        assert all(TOKEN not in json.dumps(entry) for entry in hub.log)
        back = subprocess.run(
            [sys.executable, "-c", READ_BACK, "tester/dermasynth"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert back.returncode == 0, back.stderr
        counts = json.loads(back.stdout.strip().splitlines()[-1])
    assert counts["all"]["rows"] == sum(rows.values())
    for config, n in rows.items():
        assert counts[config] == {"rows": n, "image": counts[config]["image"]}
        assert counts[config]["image"].endswith("ImageFile")


def test_dry_run_uploads_nothing(release, tmp_path):
    folder, _ = release
    with FakeHub(token=TOKEN) as hub:
        result = dermasynth(
            "push", str(folder), "--repo-id", "tester/x", "--dry-run", env=env_for(hub, tmp_path)
        )
        assert result.returncode == 0, result.stderr
        assert "README.md" in result.stdout and "nothing uploaded" in result.stdout
        assert not [e for e in hub.log if e["method"] in ("POST", "PUT")]


def test_missing_or_wrong_token(release, tmp_path):
    folder, _ = release
    with FakeHub(token=TOKEN) as hub:
        missing = dermasynth(
            "push",
            str(folder),
            "--repo-id",
            "tester/x",
            "--allow-offline",
            env=env_for(hub, tmp_path, token=None),
        )
        assert missing.returncode == 2 and "HF_TOKEN" in missing.stderr
        wrong = dermasynth(
            "push",
            str(folder),
            "--repo-id",
            "tester/x",
            "--allow-offline",
            env=env_for(hub, tmp_path, token="hf_wrong_token_000"),
        )
        assert wrong.returncode == 2 and "refused" in wrong.stderr
        assert "hf_wrong_token_000" not in wrong.stdout + wrong.stderr
    not_release = dermasynth("push", str(tmp_path), "--repo-id", "tester/x", env=os.environ.copy())
    assert not_release.returncode == 2 and "release folder" in not_release.stderr


def test_transient_hub_errors_are_retried(release, tmp_path):
    folder, _ = release
    with FakeHub(token=TOKEN) as hub:
        hub.fail("POST", "/api/repos/create", "drop")  # connection dropped without an answer
        hub.fail("POST", "/commit/", 500, times=2)
        result = dermasynth(
            "push", str(folder), "--repo-id", "tester/retry", "--allow-offline",
            "--retry-delay", "0", env=env_for(hub, tmp_path),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert result.stderr.count("retrying") == 3 and "Traceback" not in result.stderr
        files = hub.files("tester/retry")
        assert 'load_dataset("tester/retry", "scin")' in files["README.md"].decode()
        assert len(files) == len([p for p in folder.rglob("*") if p.is_file()]) - 1  # no marker


def test_hub_outage_fails_with_one_line(release, tmp_path):
    folder, _ = release
    with FakeHub(token=TOKEN) as hub:
        hub.fail("POST", "/commit/", 503, times=100)
        result = dermasynth(
            "push", str(folder), "--repo-id", "tester/down", "--allow-offline",
            "--retries", "2", "--retry-delay", "0", env=env_for(hub, tmp_path),
        )  # fmt: skip
        commits = [e for e in hub.log if e["path"].endswith("/commit/main")]
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and "after 3 tries" in errors[0] and "Traceback" not in result.stderr
    assert len(commits) == 3
    # the network down: nothing listens on the endpoint
    with FakeHub(token=TOKEN) as gone:
        env = env_for(gone, tmp_path)
    down = dermasynth(
        "push", str(folder), "--repo-id", "tester/down", "--allow-offline",
        "--retries", "1", "--retry-delay", "0", env=env,
    )  # fmt: skip
    assert down.returncode == 1, down.stderr
    assert "Traceback" not in down.stderr and down.stderr.strip().splitlines()[-1].startswith(
        "error: creating the repo failed after 2 tries"
    )
    assert TOKEN not in down.stdout + down.stderr


@pytest.mark.parametrize("repo_id", ["../x", "tester/../x", "x", "a/b/c", "tester/bad name"])
def test_bad_repo_id_is_one_line(release, tmp_path, repo_id):
    folder, _ = release
    result = dermasynth(
        "push", str(folder), "--repo-id", repo_id, "--dry-run", env=os.environ.copy()
    )
    assert result.returncode == 2 and "--repo-id" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_backoff_doubles_and_stops_at_once_on_other_errors():
    from dermasynth_builder.release_push import PushFailed, with_retries

    waits, calls = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 4:
            raise ConnectionResetError("connection reset by peer")
        return "ok"

    assert with_retries(flaky, retries=5, delay=1.5, sleep=waits.append) == ("ok", 4)
    assert waits == [1.5, 3.0, 6.0]

    def broken():
        calls.append(1)
        raise ValueError("not a network problem")

    calls.clear()
    with pytest.raises(PushFailed, match="upload failed: not a network problem"):
        with_retries(broken, retries=5, delay=1, sleep=waits.append)
    assert len(calls) == 1
