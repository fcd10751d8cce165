"""Bad inputs end in one line and an honest exit code, before any work is done: the CLI itself,
run configs, and what each verb refuses up front. Sources and plans: test_fail_fast_inputs.py;
damaged run folders and later steps: test_fail_fast_run_folder.py."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from dermasynth_builder.cli import cli
from dermasynth_builder.paths import sample_root
from dermasynth_builder.run.jsonl import dumps


def _config(tmp_path, generate: str, source: str | None = None) -> str:
    root = source or str(sample_root("pad_ufes_20"))
    path = tmp_path / "run.toml"
    path.write_text(
        f'run = "r"\n[sources]\npad_ufes_20 = "{root}"\n[generate]\n{generate}\n',
        encoding="utf-8",
    )
    return str(path)


@pytest.mark.parametrize(
    ("generate", "words"),
    [
        ('backend = "offline"\nmode = "batch"', '[generate] mode = "batch" is not available'),
        (
            'backend = "gemini"',
            "[generate] backend = 'gemini' needs an API key: set GEMINI_API_KEY",
        ),
        ('backend = "nope"', "[generate] backend = 'nope': unknown backend"),
        ('backend = "offline"\nprices = "nowhere.yaml"', "[generate] prices = 'nowhere.yaml': no"),
        (
            'backend = "offline"\nmodel = "gemini-2.0-flash"\nmedia_resolution = "low"',
            "[generate] media_resolution: gemini-2.0-flash bills images by 768 px tiles",
        ),
    ],
)
def test_run_checks_the_config_before_planning(tmp_path, generate, words):
    result = CliRunner().invoke(cli, ["run", _config(tmp_path, generate)])
    assert result.exit_code == 2, result.output
    assert words in result.output
    assert "Traceback" not in result.output
    assert "--" not in result.output.split("error:")[1]  # TOML keys, not CLI flags
    assert not (tmp_path / "r").exists()  # nothing planned


def test_run_names_a_missing_source_folder(tmp_path):
    config = _config(tmp_path, 'backend = "offline"', source=str(tmp_path / "nowhere"))
    result = CliRunner().invoke(cli, ["run", config])
    assert result.exit_code == 2
    assert "[sources] pad_ufes_20 = " in result.output and "no such folder" in result.output


def test_ctrl_c_exits_130_with_one_line(tmp_path, monkeypatch):
    import dermasynth_builder.commands.run as run_command

    def interrupted(config):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_command, "execute", interrupted)
    result = CliRunner().invoke(cli, ["run", _config(tmp_path, 'backend = "offline"')])
    assert result.exit_code == 130
    assert "interrupted" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("out", [".", "file"])
def test_demo_refuses_an_unusable_out(tmp_path, monkeypatch, out):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("mine", encoding="utf-8")
    result = CliRunner().invoke(cli, ["demo", "--out", out])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ")
    assert (tmp_path / "file").read_text(encoding="utf-8") == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_lone_surrogate_is_written_not_raised():
    line = dumps({"answer": "bad \ud800 text"})
    assert "\ufffd" in line
    assert json.loads(line.encode("utf-8"))["answer"] == "bad \ufffd text"


def test_an_os_error_is_one_line(tmp_path, monkeypatch):
    import dermasynth_builder.commands.run as run_command

    def full(config):
        raise OSError(28, "No space left on device", str(tmp_path / "r" / "responses.jsonl"))

    monkeypatch.setattr(run_command, "execute", full)
    result = CliRunner().invoke(cli, ["run", _config(tmp_path, 'backend = "offline"')])
    assert result.exit_code == 2
    assert result.output.startswith("error: [Errno 28] No space left on device")
    assert len(result.output.strip().splitlines()) == 1


def test_bare_command_prints_help_and_exits_0():
    result = CliRunner().invoke(cli, [])
    assert result.exit_code == 0
    assert "Commands:" in result.output


def test_verb_summaries_are_whole_sentences():
    result = CliRunner().invoke(cli, ["--help"], terminal_width=80)
    assert "..." not in result.output.split("Commands:")[1]
    assert "skipping finished steps." in " ".join(result.output.split())


def test_cancel_without_batch_jobs_needs_no_key(tmp_path, monkeypatch):
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(cli, ["cancel", str(tmp_path)])
    assert result.exit_code == 0 and "nothing to cancel" in result.output


def test_run_warns_of_an_unpriced_model_before_work(tmp_path):
    config = _config(tmp_path, 'backend = "offline"\nmodel = "gemini-2.5-flsh"')
    result = CliRunner().invoke(cli, ["run", config])
    first = result.output.splitlines()[0]
    assert first.startswith("warning: ") and "model = 'gemini-2.5-flsh' has no profile" in first
    assert "cost reads unknown" in first


def test_demo_refuses_a_foreign_out_before_any_work(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    result = CliRunner().invoke(cli, ["demo", "--out", str(out)])
    assert result.exit_code == 2 and "holds 'notes.txt'" in result.output
    assert not (tmp_path / "mine-run").exists()


def test_run_speaks_toml_when_the_plan_changed(tmp_path):
    config = _config(tmp_path, 'backend = "offline"')
    assert CliRunner().invoke(cli, ["run", config]).exit_code == 0
    text = (tmp_path / "run.toml").read_text(encoding="utf-8")
    (tmp_path / "run.toml").write_text(text.replace("[generate]", "[plan]\nseed = 3\n[generate]"))
    result = CliRunner().invoke(cli, ["run", config])
    assert result.exit_code == 2 and "set fresh = true under [plan]" in result.output
    assert "--fresh" not in result.output
    (tmp_path / "run.toml").write_text(
        text.replace("[generate]", "[plan]\nseed = 3\nfresh = true\n[generate]")
    )
    assert CliRunner().invoke(cli, ["run", config]).exit_code == 0


def test_import_original_does_not_offer_sample(tmp_path):
    data = tmp_path / "orig.json"
    data.write_text("[]", encoding="utf-8")
    result = CliRunner().invoke(cli, ["import-original", str(data), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--sample" not in result.output


def test_a_local_server_needs_no_key_in_a_run_config(tmp_path, monkeypatch):
    from dermasynth_builder.pipeline import RunConfig, config_problems

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    config = RunConfig(
        run=tmp_path / "r",
        sources={"hiba": sample_root("hiba")},
        generate={"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1"},
    )
    assert config_problems(config) == []
