"""Package, load and demo: a Parquet release that stock `datasets` loads offline per config."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner
from huggingface_hub import DatasetCardData
from PIL import Image

from dermasynth_builder.card import FLAT_CALL, format_cost
from dermasynth_builder.cli import cli
from dermasynth_builder.curate import curate
from dermasynth_builder.engine import Engine, GenerateOptions
from dermasynth_builder.package import package
from dermasynth_builder.paths import sample_root
from dermasynth_builder.plan import make_plan
from dermasynth_builder.run import RunFolder
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


def unique_image_bytes(run):
    """Bytes of the distinct source images the release holds (each stored once)."""
    info = json.loads((run / "run.json").read_text())
    roots = {k: v["root"] for k, v in info["plan"]["sources"].items()}
    paths = {(p["source"], p["image_path"]) for p in pairs_of(run)}
    return sum((Path(roots[s]) / path).stat().st_size for s, path in paths)


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
    assert meta["annotations_creators"] == ["machine-generated"]
    assert meta["source_datasets"] == ["original"]  # Hub terms, never URLs
    names = {f["name"] for f in meta["dataset_info"][0]["features"]}
    assert {"images", "messages", "pairs", "diagnosis", "official_split"} <= names
    for needle in (
        "Non-commercial",
        "SCIN Data Use License",
        "Not for clinical use",
        'load_dataset("<org>/dermasynth", "scin")',
        "Citation",
        "figures/pairs_by_type.png",
        "Agreement",
        "from 5 source collections",
        "re-encoded as",
        "stratify_by_column",
        "input_columns=",
    ):
        assert needle in text, needle
    # the offline backend wrote these pairs: the card says so first, before the title
    assert text.index("Offline test release") < text.index("# DermaSynth")
    pairs = pairs_of(run)
    by_image = Counter((p["source"], p["image_id"]) for p in pairs)
    cache = tmp_path / "cache"
    seen = Counter()
    for config in CONFIGS:
        ds = load(out, config, cache)
        rows = sum(len(split) for split in ds.values())
        images = {k for k in by_image if config in ("all", k[0])}
        assert rows == len(images), config
        assert config == "all" or rows == sum(release.rows[config].values())
        first = ds["train"][0]
        assert len(first["images"]) == 1 and isinstance(first["images"][0], Image.Image)
        assert len(first["pairs"]) == by_image[(first["source"], first["image_id"])]
        assert len(first["messages"]) == 2 * len(first["pairs"])
        features = ds["train"].features
        assert isinstance(features["diagnosis"], datasets.ClassLabel)
        assert features["diagnosis"].names == release.diagnoses  # one label space everywhere
        if config != "all":
            for split in ds.values():
                seen.update(p["id"] for ps in split["pairs"] for p in ps)
    assert seen == Counter(p["id"] for p in pairs)  # every pair exactly once
    # grouped split: no patient, lesion or case on both sides; official test images in test
    ds = load(out, "all", cache)
    cols = ["source", "group_id", "official_split"]
    train = {(r["source"], r["group_id"]) for r in ds["train"].select_columns(cols)}
    test = {(r["source"], r["group_id"]) for r in ds["test"].select_columns(cols)}
    assert train and test and not train & test
    assert "test" not in ds["train"]["official_split"]
    # record fields the release keeps
    records = {(r.source, r.image_id): r for r in RunFolder(run).records()}
    row = ds["train"][0]
    record = records[(row["source"], row["image_id"])]
    assert row["diagnosis_code"] == record.diagnosis_code
    assert row["diagnosis_hierarchy"] == list(record.diagnosis_hierarchy)
    assert row["official_split"] == record.split
    name = features["diagnosis"].int2str(row["diagnosis"]) if row["diagnosis"] is not None else None
    assert name == record.diagnosis


def test_stratified_split_and_flat_view(run, tmp_path):
    out = tmp_path / "rel"
    package(run, out)
    ds = load(out, "all", tmp_path / "cache")["train"]
    labelled = ds.filter(lambda m: m is not None, input_columns="malignancy")
    split = labelled.train_test_split(test_size=0.5, stratify_by_column="malignancy", seed=0)
    assert len(split["train"]) + len(split["test"]) == len(labelled)
    counts = Counter(labelled["diagnosis"])
    common = labelled.filter(lambda d: d is not None and counts[d] >= 2, input_columns="diagnosis")
    by_dx = common.train_test_split(test_size=0.5, stratify_by_column="diagnosis", seed=0)
    assert set(by_dx["train"]["diagnosis"]) == set(by_dx["test"]["diagnosis"])
    # the card's one call for a flat per-pair view
    flat = eval(FLAT_CALL.removeprefix("flat = "), {"ds": ds})
    assert len(flat) == sum(len(p) for p in ds["pairs"])
    assert {"image_id", "id", "question", "answer", "question_type"} <= set(flat.column_names)


def test_release_size_is_about_the_unique_image_bytes(run, tmp_path):
    out = tmp_path / "rel"
    package(run, out, max_image_side=None)  # original bytes: comparable to the source files
    files = list(out.rglob("*.parquet"))
    stored = sum(p.stat().st_size for p in files)
    # each Parquet file has a fixed footer (~15 KB of column metadata): on this 44-image sample
    # split over ten files it is the bulk of the overhead, at real scale it is noise
    footers = sum(pq.ParquetFile(p).metadata.serialized_size for p in files)
    images = unique_image_bytes(run)
    text = (run / "pairs.jsonl").stat().st_size
    assert stored - footers <= 1.05 * images + text, (stored, footers, images, text)
    assert stored >= images  # every image is in it


def test_card_holds_only_what_the_release_holds(tmp_path, sample_copy):
    run = tmp_path / "run"
    make_plan([("pad_ufes_20", sample_root("pad_ufes_20"))], run)
    Engine(run, GenerateOptions(backend="offline")).run_sync()
    curate(run, figures=False)
    info = json.loads((run / "run.json").read_text())
    info["generation"]["estimated_cost_usd"] = 0.0011
    (run / "run.json").write_text(json.dumps(info))
    package(run, tmp_path / "rel")
    meta, text = front_matter(tmp_path / "rel" / "README.md")
    assert [c["config_name"] for c in meta["configs"]] == ["all", "pad_ufes_20"]
    assert "from 1 source collection." in text and "collections." not in text
    assert "$0.0011" in text
    for other in ("scin", "hiba", "derm12345", "bcn20000"):
        assert f'"{other}")' not in text, other
    for population in ("Türkiye", "Spain", "Argentina", "USA"):
        assert population not in text, population
    assert "Brazil" in text


def test_format_cost():
    # as `generate` prints it
    assert format_cost(0.0011) == "$0.0011"
    assert format_cost(0.028941) == "$0.0289"
    assert format_cost(1234.5) == "$1,234.5000"
    assert format_cost(0) is None


def test_release_loads_by_folder_name_from_its_parent(run, tmp_path, monkeypatch):
    package(run, tmp_path / "dermasynth")
    monkeypatch.chdir(tmp_path)
    ds = load("dermasynth", "scin", tmp_path / "cache")
    assert len(ds["train"]) == len({p["image_id"] for p in pairs_of(run) if p["source"] == "scin"})


def test_images_are_reencoded_or_kept(run, tmp_path):
    package(run, tmp_path / "small", max_image_side=100)
    ds = load(tmp_path / "small", "derm12345", tmp_path / "c1")
    assert max(ds["train"][0]["images"][0].size) == 100
    assert all(ds["train"]["image_reencoded"])
    assert "re-encoded as JPEG" in (tmp_path / "small" / "README.md").read_text()
    package(run, tmp_path / "orig", max_image_side=None)
    ds = load(tmp_path / "orig", "hiba", tmp_path / "c2")
    row = ds["train"].cast_column("images", datasets.List(datasets.Image(decode=False)))[0]
    original = next(sample_root("hiba").glob(f"{ds['train'][0]['image_id']}.jpg")).read_bytes()
    assert row["images"][0]["bytes"] == original and not row["image_reencoded"]
    assert "no re-encoding" in (tmp_path / "orig" / "README.md").read_text()


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
    assert "offline backend" in result.output  # the example is template text: it says so
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


def test_card_of_a_model_release_states_calls_images_grounding_and_splits(run, tmp_path):
    """What issue 12 asks the card to state, for pairs a real model wrote (the card is rendered
    from the same release with its pairs' model renamed; nothing else differs)."""
    from dermasynth_builder.card import render_card

    release = package(run, tmp_path / "rel", test_fraction=0.2)
    info = json.loads((run / "run.json").read_text())
    info["generation"]["model_settings"] = {"max_image_side": 3072, "original_bytes": True}
    n = sum(release.models.values())
    release.models = Counter({"gemini-3.1-flash-lite": n})
    text = render_card(run, info, release)
    assert "Offline" not in text and "offline backend" not in text
    for needle in (
        "answered in a single call",  # call packing
        "downscaled before they were sent to the model when their longest side exceeded\n3072",
        "smaller images were sent as their original bytes",
        "re-encoded as JPEG (quality 90)",  # in the release
        "Grounding policy",
        "`grounding` filter",
        "official test images are kept out",
        "seeded hash of the group",
        "No official test image is ever in `train`",
    ):
        assert needle in text, needle
    info["generation"]["model_settings"]["original_bytes"] = False
    assert "smaller images were re-encoded as JPEG" in render_card(run, info, release)
    info["generation"]["options"]["one_question_per_request"] = True
    assert "in its own call" in render_card(run, info, release)
