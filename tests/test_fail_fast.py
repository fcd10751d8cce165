"""Bad inputs end in one line and an honest exit code, before any work is done."""

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


def test_a_source_error_names_the_source_once(tmp_path):
    result = CliRunner().invoke(cli, ["sources", "check", "pad_ufes_20", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert result.output.count("pad_ufes_20:") == 1


def _pad_copy(tmp_path):
    """A writable copy of the bundled PAD-UFES-20 sample."""
    import shutil

    root = tmp_path / "pad"
    shutil.copytree(sample_root("pad_ufes_20"), root)
    return root


def _bomb_png(path, side: int = 30000) -> None:
    """A small file whose header claims side x side pixels (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\x00" * (side + 1), 9)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def test_a_decompression_bomb_is_skipped_with_a_reason(tmp_path):
    root = _pad_copy(tmp_path)
    victim = next(root.rglob("*.png"))
    _bomb_png(victim)
    result = CliRunner().invoke(cli, ["sources", "check", "pad_ufes_20", str(root)])
    assert result.exit_code == 1  # 1: some items were skipped
    assert "too large (over 178,956,970 pixels)" in result.output
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["plan", "--source", f"pad_ufes_20={root}", "--out", str(run)])
    assert result.exit_code in (0, 1), result.output
    skipped = [json.loads(line) for line in (run / "skipped.jsonl").read_text().splitlines()]
    bomb = [s for s in skipped if victim.name in s["detail"]]
    assert len(bomb) == 1 and "too large" in bomb[0]["detail"]


def test_a_source_with_no_usable_image_warns_and_an_empty_plan_exits_2(tmp_path):
    root = _pad_copy(tmp_path)
    for image in root.rglob("*.png"):
        image.unlink()
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["plan", "--source", f"pad_ufes_20={root}", "--out", str(run)])
    assert result.exit_code == 2
    assert "pad_ufes_20: no usable image (" in result.output
    assert "image file missing" in result.output or "missing" in result.output
    assert f"are the images unpacked under {root}?" in result.output
    assert "error: the plan has no requests" in result.output
    assert "Traceback" not in result.output


def test_a_failed_plan_leaves_no_empty_folder(tmp_path):
    run = tmp_path / "new-run"
    result = CliRunner().invoke(
        cli, ["plan", "--source", f"pad_ufes_20={tmp_path / 'nowhere'}", "--out", str(run)]
    )
    assert result.exit_code == 2
    assert not run.exists()


def test_plan_out_naming_a_file_is_one_line(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("mine", encoding="utf-8")
    result = CliRunner().invoke(cli, ["plan", "--sample", "--out", str(target)])
    assert result.exit_code == 2
    assert "is a file, not a run folder" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert target.read_text(encoding="utf-8") == "mine"


def test_a_huge_metadata_cell_is_cut_with_a_warning(tmp_path):
    from dermasynth_builder.sources import get_source
    from dermasynth_builder.sources.base import MAX_CELL_CHARS

    root = _pad_copy(tmp_path)
    meta = root / "metadata.csv"
    lines = meta.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    cells = lines[1].split(",")
    cells[header.index("region")] = "x" * (MAX_CELL_CHARS * 20)
    lines[1] = ",".join(cells)
    meta.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = get_source("pad_ufes_20").read(root)
    cut = [w for w in result.warnings if "cut to" in w.detail]
    assert len(cut) == 1 and cut[0].detail.startswith("region:") and cut[0].line == 2
    assert cut[0].file.endswith("metadata.csv")
    longest = max(len(json.dumps(r.to_dict())) for r in result.records)
    assert longest < MAX_CELL_CHARS * 2


def test_a_nul_byte_in_a_scin_image_path_is_a_skip(tmp_path):
    import shutil

    from dermasynth_builder.sources import get_source

    root = tmp_path / "scin"
    shutil.copytree(sample_root("scin"), root)
    cases = next(root.rglob("scin_cases.csv"))
    text = cases.read_text(encoding="utf-8")
    first = text.splitlines()[1]
    path_cell = next(c for c in first.split(",") if c.endswith(".png"))
    cases.write_text(text.replace(path_cell, path_cell[:-4] + "\x00.png", 1), encoding="utf-8")
    result = get_source("scin").read(root)
    assert any("NUL byte" in s.detail for s in result.skipped)


def test_a_typo_in_a_source_name_gets_did_you_mean(tmp_path):
    result = CliRunner().invoke(cli, ["sources", "check", "pad_ufes", str(tmp_path)])
    assert result.exit_code == 2 and "did you mean pad_ufes_20?" in result.output
    result = CliRunner().invoke(
        cli, ["plan", "--source", "bcn2000=x", "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2 and "did you mean bcn20000?" in result.output


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


def test_package_options_and_moved_images_are_one_line(tmp_path):
    import shutil

    root = _pad_copy(tmp_path)
    run = tmp_path / "run"
    runner = CliRunner()
    runner.invoke(cli, ["plan", "--source", f"pad_ufes_20={root}", "--out", str(run)])
    runner.invoke(cli, ["generate", str(run), "--backend", "offline"])
    runner.invoke(cli, ["curate", str(run)])
    bad = runner.invoke(
        cli, ["package", str(run), "--out", str(tmp_path / "r"), "--max-shard-size", "abc"]
    )
    assert bad.exit_code == 2 and "is not a size such as 500MB" in bad.output
    shutil.rmtree(root / "images")
    moved = runner.invoke(cli, ["package", str(run), "--out", str(tmp_path / "r")])
    assert moved.exit_code == 2, moved.output
    assert "cannot read an image of the run" in moved.output and "Traceback" not in moved.output
    assert not (tmp_path / "r").exists()


def test_export_out_inside_the_release_is_refused(tmp_path):
    release = tmp_path / "release"
    demo = CliRunner().invoke(cli, ["demo", "--out", str(release)])
    assert demo.exit_code in (0, 1), demo.output
    result = CliRunner().invoke(
        cli, ["export", str(release), "--format", "llava", "--out", str(release / "exp")]
    )
    assert result.exit_code == 2 and "is inside the release" in result.output
    assert not (release / "exp").exists()


def test_demo_refuses_a_foreign_out_before_any_work(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    result = CliRunner().invoke(cli, ["demo", "--out", str(out)])
    assert result.exit_code == 2 and "holds 'notes.txt'" in result.output
    assert not (tmp_path / "mine-run").exists()


def test_plan_exits_1_when_rows_are_skipped(tmp_path):
    root = _pad_copy(tmp_path)
    next(root.rglob("*.png")).unlink()
    result = CliRunner().invoke(
        cli, ["plan", "--source", f"pad_ufes_20={root}", "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 1 and "1 metadata rows skipped" in result.output
    sample = CliRunner().invoke(cli, ["plan", "--sample", "--out", str(tmp_path / "s")])
    assert sample.exit_code == 0  # SCIN's ungradable case is a policy skip, not a problem


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


def test_sources_check_warns_when_nothing_is_usable(tmp_path):
    root = _pad_copy(tmp_path)
    for image in root.rglob("*.png"):
        image.unlink()
    result = CliRunner().invoke(cli, ["sources", "check", "pad_ufes_20", str(root)])
    assert result.exit_code == 1
    assert "no usable image" in result.output and "are the images unpacked" in result.output


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


def test_a_local_server_needs_no_key_in_a_run_config(tmp_path, monkeypatch):
    from dermasynth_builder.pipeline import RunConfig, config_problems

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    config = RunConfig(
        run=tmp_path / "r",
        sources={"hiba": sample_root("hiba")},
        generate={"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1"},
    )
    assert config_problems(config) == []
