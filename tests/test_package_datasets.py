"""The builder's one shortcut past `datasets` (examples yielded in storage form, so the
per-example encoding is skipped) gives exactly the table the stock encoding gives, and is
really in effect. Run against the oldest and the newest `datasets` the project allows:

    .venv/bin/python -m pytest tests/test_package_datasets.py            # newest (the venv's)
    PYTHONPATH=. /tmp/venv-datasets-4.0.0/bin/python -m pytest tests/test_package_datasets.py

The release rows are what TRL's vision-language collator reads (`images` + `messages`); the
collator test itself lives with the fine-tuning tests.
"""

from __future__ import annotations

import datasets
import pyarrow.parquet as pq
import pytest

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


def test_shortcut_gives_the_stock_encoding(run, tmp_path, monkeypatch):
    package(run, tmp_path / "fast", test_fraction=0.3, max_image_side=100)
    module = builder_module()
    real = module.features
    monkeypatch.setattr(module, "features", lambda names=(): datasets.Features(real(names)))
    package(run, tmp_path / "stock", test_fraction=0.3, max_image_side=100)
    fast, stock = tables(tmp_path / "fast"), tables(tmp_path / "stock")
    assert fast.keys() == stock.keys() and fast
    for name in fast:
        assert fast[name].equals(stock[name]), name


def test_shortcut_is_in_effect(run, tmp_path, monkeypatch):
    def stock_encoding(self, example):
        raise AssertionError("the per-example encoding ran: the shortcut was lost")

    monkeypatch.setattr(datasets.Features, "encode_example", stock_encoding)
    release = package(run, tmp_path / "rel")
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
