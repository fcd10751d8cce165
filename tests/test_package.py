"""Package, load and demo: a Parquet release that stock `datasets` loads offline per config."""

from __future__ import annotations

import json
from collections import Counter

import datasets
import pytest
import yaml
from click.testing import CliRunner
from huggingface_hub import DatasetCardData
from PIL import Image

from dermasynth_builder.cli import cli
from dermasynth_builder.curate import curate
from dermasynth_builder.engine import Engine, GenerateOptions
from dermasynth_builder.package import package
from dermasynth_builder.paths import sample_root
from dermasynth_builder.plan import make_plan
from dermasynth_builder.sources import SOURCES
from dermasynth_builder.sources.registry import REGISTRY, license_for

CONFIGS = ["all", *SOURCES]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("pkg") / "run"
    make_plan([(s, sample_root(s)) for s in SOURCES], path)
    Engine(path, GenerateOptions(backend="offline")).run_sync()
    curate(path, figures=True)
    return path


def pairs_of(run):
    return [json.loads(x) for x in (run / "pairs.jsonl").read_text().splitlines()]


def front_matter(readme):
    text = readme.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1]), text


def load(path, config, cache):
    datasets.disable_progress_bars()
    return datasets.load_dataset(str(path), config, cache_dir=str(cache))


def test_release_layout_card_and_loading(run, tmp_path):
    out = tmp_path / "dermasynth"
    release = package(run, out, test_fraction=0.3)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.parquet"))
    assert files and all(
        f.split("/")[1] in SOURCES and f.split("/")[2].split("-")[0] in ("train", "test")
        for f in files
    )
    assert all("-of-" in f for f in files)
    assert not (out / "data" / "all").exists()  # `all` reuses the per-source files
    meta, text = front_matter(out / "README.md")
    DatasetCardData(**meta)  # valid card metadata
    configs = {c["config_name"]: c for c in meta["configs"]}
    assert list(configs) == CONFIGS and configs["all"]["default"] is True
    assert {"cc-by-4.0", "cc-by-nc-4.0", "other"} == set(meta["license"])
    scin = license_for(REGISTRY["scin"].license)
    assert (meta["license_name"], meta["license_link"]) == (scin.hub_name, scin.link)
    assert meta["task_categories"] and meta["language"] == ["en"] and meta["size_categories"]
    assert {f["name"] for f in meta["dataset_info"][0]["features"]} >= {
        "image",
        "question",
        "answer",
    }
    for needle in (
        "Non-commercial",
        "SCIN Data Use License",
        "Not for clinical use",
        "load_dataset(",
        "Citation",
        "figures/pairs_by_type.png",
        "Agreement",
    ):
        assert needle in text, needle
    pairs = pairs_of(run)
    expected = Counter(p["source"] for p in pairs)
    cache = tmp_path / "cache"
    seen_ids = set()
    for config in CONFIGS:
        ds = load(out, config, cache)
        rows = sum(len(split) for split in ds.values())
        assert rows == (len(pairs) if config == "all" else expected[config]), config
        assert rows == sum(release.rows.get(config, {}).values()) or config == "all"
        first = ds["train"][0]
        assert isinstance(first["image"], Image.Image) and first["question"] and first["answer"]
        assert isinstance(ds["train"].features["image"], datasets.Image)
        if config != "all":
            seen_ids |= {r for split in ds.values() for r in split["id"]}
    assert seen_ids == {p["id"] for p in pairs}
    # grouped split: no patient, lesion or case on both sides
    ds = load(out, "all", cache)
    train = {
        (r["source"], r["group_id"]) for r in ds["train"].select_columns(["source", "group_id"])
    }
    test = {(r["source"], r["group_id"]) for r in ds["test"].select_columns(["source", "group_id"])}
    assert train and test and not train & test


def test_release_loads_by_folder_name_from_its_parent(run, tmp_path, monkeypatch):
    package(run, tmp_path / "dermasynth")
    monkeypatch.chdir(tmp_path)
    ds = load("dermasynth", "scin", tmp_path / "cache")
    assert len(ds["train"]) == Counter(p["source"] for p in pairs_of(run))["scin"]


def test_images_are_reencoded_or_kept(run, tmp_path):
    package(run, tmp_path / "small", max_image_side=100)
    ds = load(tmp_path / "small", "derm12345", tmp_path / "c1")
    assert max(ds["train"][0]["image"].size) == 100
    package(run, tmp_path / "orig", max_image_side=None)
    ds = load(tmp_path / "orig", "hiba", tmp_path / "c2")
    row = ds["train"].cast_column("image", datasets.Image(decode=False))[0]
    original = next(sample_root("hiba").glob(f"{ds['train'][0]['image_id']}.jpg")).read_bytes()
    assert row["image"]["bytes"] == original


def test_package_cli_and_errors(run, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["package", str(run), "--out", str(tmp_path / "rel")])
    assert result.exit_code == 0, result.output
    assert "release" in result.output and (tmp_path / "rel" / "README.md").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = runner.invoke(cli, ["package", str(empty), "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "run.json" in bad.output


def test_demo_in_an_empty_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["demo"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "dermasynth" / "README.md").is_file()
    assert "example pair" in result.output and "Q: " in result.output and "A: " in result.output
    for config in CONFIGS:
        assert config in result.output
    again = CliRunner().invoke(cli, ["demo"])
    assert again.exit_code == 0 and again.output.count("skipped (already done)") == 4


def test_run_config_skips_finished_steps(tmp_path, sample_copy):
    pad = sample_copy("pad_ufes_20")
    config = tmp_path / "run.toml"
    config.write_text(
        f'run = "work"\n[sources]\npad_ufes_20 = "{pad}"\nhiba = "{sample_root("hiba")}"\n'
        '[plan]\nseed = 3\n[generate]\nbackend = "offline"\n[package]\nout = "release"\n'
    )
    runner = CliRunner()
    first = runner.invoke(cli, ["run", str(config)])
    assert first.exit_code == 0, first.output
    assert first.output.count(": done") == 4
    assert (tmp_path / "release" / "README.md").is_file()
    second = runner.invoke(cli, ["run", str(config)])
    assert second.output.count("skipped (already done)") == 4
    # a new curation config makes curate and package stale, not plan or generate
    (tmp_path / "curate.yaml").write_text("min_answer_words: 6\n")
    config.write_text(config.read_text() + '[curate]\nconfig = "curate.yaml"\n')
    third = runner.invoke(cli, ["run", str(config)])
    assert third.output.count("skipped (already done)") == 2 and third.output.count(": done") == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".release.")]
    config.write_text(config.read_text() + "[typo]\nx = 1\n")
    bad = runner.invoke(cli, ["run", str(config)])
    assert bad.exit_code == 2 and "typo" in bad.output
