"""`package` writes the hub builder's rows with pyarrow (`release_writer`), past `datasets`'
generic writer; the builder's stock `download_and_prepare` (with its one shortcut, examples
yielded in storage form so the per-example encoding is skipped, and without it) gives the same
files: the same tables, features, row groups and shards. Each shortcut is really in effect.
Run against the oldest and the newest `datasets` the project allows:

    .venv/bin/python -m pytest tests/test_package_datasets.py            # newest (the venv's)
    PYTHONPATH=. /tmp/venv-datasets-4.0.0/bin/python -m pytest tests/test_package_datasets.py

The release rows are what TRL's vision-language collator reads (`images` + `messages`); the
collator test itself lives with the fine-tuning tests.
"""

from __future__ import annotations

import datasets
import pyarrow.parquet as pq
import pytest

import dermasynth_builder.package as package_module
from dermasynth_builder.curate import curate
from dermasynth_builder.engine import Engine, GenerateOptions
from dermasynth_builder.package import builder_module, package
from dermasynth_builder.paths import sample_root
from dermasynth_builder.plan import make_plan

SOURCES = ("pad_ufes_20", "hiba", "scin")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("versions") / "run"
    make_plan([(s, sample_root(s)) for s in SOURCES], path)
    Engine(path, GenerateOptions(backend="offline")).run_sync()
    curate(path, figures=False)
    return path


def tables(out):
    """Every Parquet file's rows, without the schema metadata (which names the builder)."""
    return {
        p.relative_to(out).as_posix(): pq.read_table(p).replace_schema_metadata(None)
        for p in sorted(out.glob("data/*/*.parquet"))
    }


def layout(out):
    """Every Parquet file's features (as `load_dataset` reads them) and row-group sizes."""
    found = {}
    for path in sorted(out.glob("data/*/*.parquet")):
        meta = pq.ParquetFile(path).metadata
        features = datasets.Features.from_arrow_schema(pq.read_schema(path))
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        found[path.relative_to(out).as_posix()] = (features, sizes)
    return found


def stock(monkeypatch, encoding):
    """`package` through the builder's `download_and_prepare`; with ``encoding``, through the
    stock per-example encoding too (plain `Features`)."""
    monkeypatch.setattr(package_module, "WRITER", "datasets")
    if encoding:
        module = builder_module()
        real = module.features
        monkeypatch.setattr(module, "features", lambda names=(): datasets.Features(real(names)))


@pytest.mark.parametrize("encoding", [False, True], ids=["stored-form", "stock-encoding"])
@pytest.mark.parametrize("shard", ["500MB", "40KB"], ids=["one-file", "shards"])
def test_pyarrow_writer_gives_the_builders_files(run, tmp_path, monkeypatch, encoding, shard):
    options = {"test_fraction": 0.3, "max_image_side": 100, "max_shard_size": shard}
    ours = package(run, tmp_path / "fast", **options)
    stock(monkeypatch, encoding)
    theirs = package(run, tmp_path / "stock", **options)
    fast, slow = tables(tmp_path / "fast"), tables(tmp_path / "stock")
    assert fast.keys() == slow.keys() and fast
    for name in fast:
        assert fast[name].equals(slow[name]), name
    assert layout(tmp_path / "fast") == layout(tmp_path / "stock")
    assert (ours.rows, ours.files, ours.reencoded) == (theirs.rows, theirs.files, theirs.reencoded)
    assert ours.nbytes == theirs.nbytes
    if shard == "40KB":
        assert len(ours.files["pad_ufes_20"]) > 1
    assert ours.reencoded


def test_row_groups_are_small(run, tmp_path):
    package(run, tmp_path / "rel", max_image_side=100)
    for features, sizes in layout(tmp_path / "rel").values():
        assert isinstance(features["diagnosis"], datasets.ClassLabel)
        assert isinstance(features["images"].feature, datasets.Image)
        assert sizes and all(n == 100 for n in sizes[:-1]) and 0 < sizes[-1] <= 100


def test_shortcuts_are_in_effect(run, tmp_path, monkeypatch):
    def stock_encoding(self, example):
        raise AssertionError("the per-example encoding ran: the shortcut was lost")

    def stock_writer(self, *args, **kwargs):
        raise AssertionError("datasets' writer ran: `package` should write with pyarrow")

    monkeypatch.setattr(datasets.Features, "encode_example", stock_encoding)
    with monkeypatch.context() as patch:
        patch.setattr(datasets.arrow_writer.ArrowWriter, "write", stock_writer)
        patch.setattr(datasets.arrow_writer.ArrowWriter, "write_table", stock_writer)
        release = package(run, tmp_path / "rel")
    assert sum(sum(s.values()) for s in release.rows.values())
    monkeypatch.setattr(package_module, "WRITER", "datasets")  # the builder's own path
    release = package(run, tmp_path / "stock")
    assert sum(sum(s.values()) for s in release.rows.values())


def test_release_loads_with_typed_labels(run, tmp_path):
    release = package(run, tmp_path / "rel")
    ds = datasets.load_dataset(str(tmp_path / "rel"), "all", cache_dir=str(tmp_path / "cache"))
    features = ds["train"].features
    assert isinstance(features["diagnosis"], datasets.ClassLabel)
    assert features["diagnosis"].names == release.diagnoses
    row = ds["train"][0]
    assert row["messages"][0]["content"][0] == {"type": "image", "text": None}
    assert len(row["images"]) == 1


def test_a_large_run_is_packaged_through_piece_files_alike(run, tmp_path, monkeypatch):
    """Past ``IN_MEMORY_BYTES`` of pairs a serial package keeps pairs in piece files instead
    of memory (bounded memory for big runs), and writes the same release."""
    options = {"test_fraction": 0.3, "max_image_side": 100}
    held = package(run, tmp_path / "memory", **options)
    built: list[str] = []
    real = package_module.build_source

    def spy(job):
        built.append(str(job.get("pair_rows", "from piece file")))
        return real(job)

    monkeypatch.setattr(package_module, "IN_MEMORY_BYTES", 0)
    monkeypatch.setattr(package_module, "build_source", spy)
    filed = package(run, tmp_path / "files", **options)
    assert built and all(b == "from piece file" for b in built)
    memory, files = tables(tmp_path / "memory"), tables(tmp_path / "files")
    assert memory.keys() == files.keys() and memory
    assert all(memory[name].equals(files[name]) for name in memory)
    assert (held.rows, held.files, held.nbytes) == (filed.rows, filed.files, filed.nbytes)
