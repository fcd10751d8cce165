"""`package` writes only its own release: foreign --out refused untouched, own release replaced
whole, kill -9 at any moment recoverable, pairs grouped by image whatever their order, unknown
licences refused, and card/package free of import cycles."""

from __future__ import annotations

import ast
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import datasets
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import dermasynth_builder.package as package_module
from dermasynth_builder.card import card_data
from dermasynth_builder.cli import cli
from dermasynth_builder.curate import curate
from dermasynth_builder.engine import Engine, GenerateOptions
from dermasynth_builder.package import _split_pairs, package
from dermasynth_builder.paths import sample_root
from dermasynth_builder.plan import make_plan
from dermasynth_builder.release import ForeignContentError, Release
from dermasynth_builder.release_folder import MARKER, foreign_entry, read_marker
from dermasynth_builder.release_pieces import Batches
from dermasynth_builder.run.fingerprint import file_digest
from dermasynth_builder.run.folder import RunFolder
from dermasynth_builder.sources.registry import SOURCE_NAMES, UnknownLicenseError

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "dermasynth_builder"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("safety") / "run"
    make_plan([(s, sample_root(s)) for s in SOURCE_NAMES], path)
    Engine(path, GenerateOptions(backend="offline")).run_sync()
    curate(path, figures=True)
    return path


def pairs_of(run):
    return [json.loads(x) for x in (run / "pairs.jsonl").read_text().splitlines()]


def rewrite_pairs(run, lines):
    """Replace pairs.jsonl as a curate run would have written it (its mark names the new file)."""
    (run / "pairs.jsonl").write_text("".join(lines))
    folder = RunFolder(run)
    mark = {k: v for k, v in folder.step("curate").items() if k != "plan"}
    folder.finish_step("curate", **{**mark, "pairs": file_digest(run / "pairs.jsonl")})


def snapshot(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() if p.is_file() else None
        for p in sorted(folder.rglob("*"))
    }


def leftovers(out):
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def cli_package(run, out, *args):
    return CliRunner().invoke(cli, ["package", str(run), "--out", str(out), *args])


def images_of(run):
    """Rows a release of ``run`` holds: one per image."""
    return len({(p["source"], p["image_id"]) for p in pairs_of(run)})


def rows_of(out, tmp_path, config="all"):
    datasets.disable_progress_bars()
    ds = datasets.load_dataset(str(out), config, cache_dir=str(tmp_path / "cache"))
    return sum(len(split) for split in ds.values())


def one_line_error(result):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def test_foreign_out_is_refused_and_left_untouched(run, tmp_path, monkeypatch):
    out = tmp_path / "project"
    (out / "data").mkdir(parents=True)
    (out / "data" / "mine.csv").write_text("image,label\na.png,nevus\n")
    (out / "README.md").write_text("# my project\n")
    (out / "notes.txt").write_text("do not lose\n")
    before = snapshot(out)
    line = one_line_error(cli_package(run, out))
    assert str(out) in line and "'README.md'" in line and "empty or new folder" in line
    assert snapshot(out) == before and not leftovers(out)
    # `--out .` from inside the project: the same refusal
    monkeypatch.chdir(out)
    line = one_line_error(cli_package(run, Path(".")))
    assert "'README.md'" in line and snapshot(out) == before and not leftovers(out)
    # a folder of our own shape without a marker is still someone else's
    (out / "README.md").unlink()
    (out / "notes.txt").unlink()
    assert "'data/'" in one_line_error(cli_package(run, out))
    file_out = tmp_path / "a-file"
    file_out.write_text("x")
    assert "not a folder" in one_line_error(cli_package(run, file_out))
    assert file_out.read_text() == "x"


def test_second_package_replaces_the_first_and_foreign_files_stop_it(run, tmp_path):
    out = tmp_path / "rel"
    out.mkdir()  # an empty folder is fine
    first = package(run, out)
    marker = read_marker(out)
    assert marker and marker["run"] == str(run.resolve()) and "README.md" in marker["files"]
    assert foreign_entry(out) is None and not leftovers(out)
    assert set(marker["files"]) == {
        p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name != MARKER
    }
    second = package(run, out, test_fraction=0.4)
    assert not leftovers(out) and foreign_entry(out) is None
    assert any("test" in r for r in second.rows.values())
    assert not any("test" in r for r in first.rows.values())
    assert any("/test-" in f for f in read_marker(out)["files"])
    assert rows_of(out, tmp_path) == images_of(run)
    # anything added to the release makes it someone else's
    (out / "data" / "scin" / "mine.csv").write_text("keep me\n")
    before = snapshot(out)
    with pytest.raises(ForeignContentError, match=r"data/scin/mine\.csv"):
        package(run, out)
    assert snapshot(out) == before and not leftovers(out)
    (out / "data" / "scin" / "mine.csv").unlink()
    (out / "raw").mkdir()
    with pytest.raises(ForeignContentError, match="'raw/'"):
        package(run, out)


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _kill_when(run, out, ready, deadline=120.0, extra=()):
    """Start `package` in a child, poll until ``ready(staging)`` holds, then SIGKILL it."""
    command = [sys.executable, "-m", "dermasynth_builder", "package", str(run), "--out", str(out)]
    proc = subprocess.Popen(
        [*command, *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
    staging = out.parent / f".{out.name}.partial-{proc.pid}"
    end = time.monotonic() + deadline
    try:
        while proc.poll() is None and not ready(staging):
            assert time.monotonic() < end, "package never reached the moment"
            time.sleep(0.001)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=deadline)
    return proc.returncode


MOMENTS = {
    "staging made": lambda s: s.is_dir(),
    "pairs split": lambda s: any((s / "work").glob("*.jsonl")),
    "builder running": lambda s: (s / "work" / "built").is_dir(),
    "data collected": lambda s: (s / "release" / "data").is_dir(),
    "card written": lambda s: (s / "release" / "README.md").is_file(),
    "marker written": lambda s: (s / "release" / MARKER).is_file(),
    "old release aside": lambda s: any(s.parent.glob(f"{s.name.split('.partial-')[0]}.old-*")),
}


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_kill_during_package_then_rerun(run, tmp_path, moment):
    out = tmp_path / "rel"
    if moment in ("pairs split", "data collected", "marker written", "old release aside"):
        package(run, out)  # an old release to replace
    # a serial package of a small run keeps its pairs in memory: piece files need workers
    extra = ("--num-proc", "2") if moment == "pairs split" else ()
    code = _kill_when(run, out, MOMENTS[moment], extra=extra)
    assert code in (-signal.SIGKILL, 0)
    if out.exists():  # the old release or the new one, never a mix
        assert read_marker(out) and foreign_entry(out) is None
        assert (out / "README.md").is_file() and (out / "data").is_dir()
    result = cli_package(run, out)
    assert result.exit_code == 0, result.output
    assert not leftovers(out), leftovers(out)
    assert rows_of(out, tmp_path) == images_of(run)


def test_kill_between_the_renames_then_rerun(run, tmp_path):
    """No --out, the old release aside and the new one staged: the next run starts afresh."""
    out = tmp_path / "rel"
    package(run, out)
    pid = _dead_pid()
    staged = tmp_path / f".rel.partial-{pid}"
    staged.mkdir()
    shutil.copytree(out, staged / "release")
    out.rename(tmp_path / f".rel.old-{pid}")
    (tmp_path / ".rel.partial-x").mkdir()  # not our pattern: never touched
    assert cli_package(run, out).exit_code == 0
    assert leftovers(out) == [".rel.partial-x"]
    assert rows_of(out, tmp_path) == images_of(run)


@pytest.fixture
def shuffled(run, tmp_path):
    """A copy of the run whose pairs.jsonl lines are not grouped by image (as an import gives)."""
    copy = tmp_path / "shuffled"
    shutil.copytree(run, copy)
    lines = (copy / "pairs.jsonl").read_text().splitlines(keepends=True)
    random.Random(7).shuffle(lines)
    rewrite_pairs(copy, lines)
    keys = [(json.loads(x)["source"], json.loads(x)["image_id"]) for x in lines]
    runs = sum(1 for a, b in zip(keys, keys[1:], strict=False) if a != b) + 1
    assert runs > len(set(keys)), "the shuffle left every image's pairs adjacent"
    return copy


def test_pairs_not_grouped_by_image(shuffled, tmp_path):
    pairs = pairs_of(shuffled)
    images = Counter(p["source"] for p in {(p["source"], p["image_id"]): p for p in pairs}.values())
    out = tmp_path / "rel"
    release = package(shuffled, out, test_fraction=0.3)
    assert release.images == images
    card = (out / "README.md").read_text()
    assert f"over {sum(images.values()):,} images" in card
    for source, n in images.items():
        assert sum(release.modalities[source].values()) == n
    # every pair once; every image in one row of one Parquet file, stored once
    where: dict[tuple[str, str], list[str]] = {}
    ids = []
    for path in sorted(out.glob("data/*/*.parquet")):
        columns = ["source", "image_id", "images", "pairs"]
        for row in pq.read_table(path, columns=columns).to_pylist():
            where.setdefault((row["source"], row["image_id"]), []).append(path.name)
            assert len(row["images"]) == 1 and row["images"][0]["bytes"]
            ids += [pair["id"] for pair in row["pairs"]]
    assert sorted(ids) == sorted(p["id"] for p in pairs)
    assert len(where) == sum(images.values())
    assert all(len(files) == 1 for files in where.values())


def test_pieces_keep_each_image_whole(shuffled, tmp_path, monkeypatch):
    """With many small pieces (parallel builds), an image's pairs still go to one piece."""
    monkeypatch.setattr(Batches, "SIZE", 3)  # pieces get appended to
    work = tmp_path / "work"
    work.mkdir()
    release = Release(tmp_path / "unused")
    pieces = _split_pairs(shuffled, work, 2, release)
    builder = package_module.builder_module()
    seen: dict[tuple[str, str], set[Path]] = {}
    for paths in pieces.values():
        for path in paths:
            for pair in builder._read_pairs(None, SimpleNamespace(pairs_file=path)):
                seen.setdefault((pair.source, pair.image_id), set()).add(path)
    pairs = pairs_of(shuffled)
    assert (
        len(seen)
        == len({(p["source"], p["image_id"]) for p in pairs})
        == sum(release.images.values())
    )
    assert all(len(paths) == 1 for paths in seen.values())
    assert sum(len(paths) for paths in pieces.values()) > len(pieces)  # really several pieces
    assert sum(release.models.values()) == len(pairs)


def test_unknown_licence_is_an_error(run, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(run, bad)
    good = (bad / "pairs.jsonl").read_text().splitlines(keepends=True)
    row = json.loads(good[3])
    row["license"] = "Made-up Licence 1.0"
    lines = [*good[:3], json.dumps(row) + "\n", *good[4:]]
    (bad / "pairs.jsonl").write_text("".join(lines))
    out = tmp_path / "rel"
    assert "changed since" in one_line_error(cli_package(bad, out))  # not what curate wrote
    rewrite_pairs(bad, lines)
    line = one_line_error(cli_package(bad, out))
    assert "line 4" in line and "Made-up Licence 1.0" in line and "unknown licence" in line
    assert not out.exists() and not leftovers(out)
    rewrite_pairs(bad, [*good[:5], "not json\n", *good[5:]])
    assert "line 6: not a JSON object" in one_line_error(cli_package(bad, out))
    assert not out.exists() and not leftovers(out)
    release = Release(out, rows={"scin": {"train": 1}}, licenses={"scin": {"Made-up"}})
    with pytest.raises(UnknownLicenseError):
        card_data(release, datasets.Features({"id": datasets.Value("string")}))


def _imports(module: str) -> set[str]:
    """Every dermasynth_builder module ``module`` imports, at any level, with parent packages."""
    path = PACKAGE_DIR.joinpath(*module.split(".")[1:])
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[: len(base) - node.level + 1] if node.level else []
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            names = [f"{target}.{a.name}" for a in node.names]
            found |= {target, *names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    found = {n for n in found if n.startswith("dermasynth_builder")}
    closed = set()
    for name in found:
        parts = name.split(".")
        closed |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)}
    exists = {
        n
        for n in closed
        if PACKAGE_DIR.joinpath(*n.split(".")[1:]).with_suffix(".py").is_file()
        or PACKAGE_DIR.joinpath(*n.split(".")[1:], "__init__.py").is_file()
    }
    return exists - {module}


def test_card_and_package_import_no_cycle():
    graph: dict[str, set[str]] = {}
    todo = ["dermasynth_builder.package", "dermasynth_builder.card"]
    while todo:
        name = todo.pop()
        if name not in graph:
            graph[name] = _imports(name)
            todo.extend(graph[name])

    def reaches(start: str, goal: str) -> bool:
        seen, stack = set(), [start]
        while stack:
            for nxt in graph.get(stack.pop(), ()):
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return False

    assert "dermasynth_builder.package" not in graph["dermasynth_builder.card"]
    for module in ("dermasynth_builder.card", "dermasynth_builder.package"):
        assert not reaches(module, module), f"{module} imports itself back"
