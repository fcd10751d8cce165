"""Bad source folders, images and plan targets end in one line, a skip with a reason, or an honest
exit code (the rest of the fail-fast checks: test_fail_fast.py)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from dermasynth_builder.cli import cli
from dermasynth_builder.paths import sample_root


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


def test_plan_exits_1_when_rows_are_skipped(tmp_path):
    root = _pad_copy(tmp_path)
    next(root.rglob("*.png")).unlink()
    result = CliRunner().invoke(
        cli, ["plan", "--source", f"pad_ufes_20={root}", "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 1 and "1 metadata rows skipped" in result.output
    sample = CliRunner().invoke(cli, ["plan", "--sample", "--out", str(tmp_path / "s")])
    assert sample.exit_code == 0  # SCIN's ungradable case is a policy skip, not a problem


def test_sources_check_warns_when_nothing_is_usable(tmp_path):
    root = _pad_copy(tmp_path)
    for image in root.rglob("*.png"):
        image.unlink()
    result = CliRunner().invoke(cli, ["sources", "check", "pad_ufes_20", str(root)])
    assert result.exit_code == 1
    assert "no usable image" in result.output and "are the images unpacked" in result.output
