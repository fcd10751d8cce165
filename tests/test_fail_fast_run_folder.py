"""A damaged run folder, bad step configs and missing keys end in one line before any work (the
rest of the fail-fast checks: test_fail_fast.py)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from dermasynth_builder.cli import cli
from dermasynth_builder.paths import sample_root


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    """An offline, curated run of the PAD-UFES-20 sample (read-only for the tests below)."""
    run = tmp_path_factory.mktemp("curated") / "run"
    source = f"pad_ufes_20={sample_root('pad_ufes_20')}"
    assert CliRunner().invoke(cli, ["plan", "--source", source, "--out", str(run)]).exit_code == 0
    assert CliRunner().invoke(cli, ["generate", str(run), "--backend", "offline"]).exit_code == 0
    assert CliRunner().invoke(cli, ["curate", str(run)]).exit_code == 0
    return run


def _copy(run, tmp_path):
    import shutil

    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


def test_a_damaged_run_json_is_one_line(curated, tmp_path):
    run = _copy(curated, tmp_path)
    (run / "run.json").write_text("garbage", encoding="utf-8")
    result = CliRunner().invoke(cli, ["curate", str(run)])
    assert result.exit_code == 2
    assert "run.json: not valid JSON" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("name", ["responses.jsonl", "records.jsonl"])
def test_a_damaged_middle_line_stops_with_file_and_line(curated, tmp_path, name):
    run = _copy(curated, tmp_path)
    lines = (run / name).read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = "{garbage\n"
    (run / name).write_text("".join(lines), encoding="utf-8")
    result = CliRunner().invoke(cli, ["curate", str(run)])
    assert result.exit_code == 2
    assert f"{name}, line 3: not a JSON object" in result.output


def test_bad_curate_configs_name_the_key(curated, tmp_path):
    run = _copy(curated, tmp_path)
    config = tmp_path / "c.yaml"
    for text, words in [
        ("garbage: [", "not valid YAML"),
        ("- a", "expected a mapping of keys"),
        ("no_such_key: 3", "no_such_key: Extra inputs are not permitted"),
    ]:
        config.write_text(text, encoding="utf-8")
        result = CliRunner().invoke(cli, ["curate", str(run), "--config", str(config)])
        assert result.exit_code == 2 and words in result.output, result.output


def test_export_out_inside_the_release_is_refused(tmp_path):
    release = tmp_path / "release"
    demo = CliRunner().invoke(cli, ["demo", "--out", str(release)])
    assert demo.exit_code in (0, 1), demo.output
    result = CliRunner().invoke(
        cli, ["export", str(release), "--format", "llava", "--out", str(release / "exp")]
    )
    assert result.exit_code == 2 and "is inside the release" in result.output
    assert not (release / "exp").exists()


def test_curate_with_no_response_exits_2(tmp_path):
    run = tmp_path / "run"
    source = f"hiba={sample_root('hiba')}"
    assert CliRunner().invoke(cli, ["plan", "--source", source, "--out", str(run)]).exit_code == 0
    result = CliRunner().invoke(cli, ["curate", str(run)])
    assert result.exit_code == 2 and "nothing to curate" in result.output
    assert "Warning" not in result.output  # no matplotlib noise


@pytest.mark.parametrize("text", ["garbage: [", "- a", "gemini-3.1-flash-lite: 5"])
def test_a_bad_price_file_is_one_line(curated, tmp_path, text):
    prices = tmp_path / "p.yaml"
    prices.write_text(text, encoding="utf-8")
    run = _copy(curated, tmp_path)
    args = ["generate", str(run), "--backend", "offline", "--prices", str(prices)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "not a price table" in result.output
    assert "Traceback" not in result.output


def test_eval_and_judge_without_a_key_write_nothing(curated, tmp_path, monkeypatch):
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(cli, ["eval", str(curated), "--out", str(tmp_path / "ev")])
    assert result.exit_code == 2 and "needs an API key" in result.output
    assert not (tmp_path / "ev").exists()
    result = CliRunner().invoke(cli, ["judge", str(curated), "--out", str(tmp_path / "j")])
    assert result.exit_code == 2 and "needs an API key" in result.output
    assert not (tmp_path / "j").exists()
