"""`dermasynth export`: a release as LLaVA and ShareGPT (LLaMA-Factory) JSON with the images
beside it, splits kept, one conversation per image or per pair."""

from __future__ import annotations

import json
from collections import Counter

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image

from dermasynth_builder.cli import cli
from dermasynth_builder.curate import curate
from dermasynth_builder.engine import Engine, GenerateOptions
from dermasynth_builder.package import package
from dermasynth_builder.paths import sample_root
from dermasynth_builder.plan import make_plan


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    run = root / "run"
    make_plan([(s, sample_root(s)) for s in ("pad_ufes_20", "hiba", "derm12345")], run)
    Engine(run, GenerateOptions(backend="offline")).run_sync()
    curate(run, figures=False)
    out = root / "release"
    package(run, out, test_fraction=0.4)
    return out


def release_rows(out):
    """split -> rows (image_id, source, pair ids) as the release holds them."""
    rows: dict[str, list[dict]] = {}
    for path in sorted(out.glob("data/*/*.parquet")):
        table = pq.read_table(path, columns=["source", "image_id", "pairs"]).to_pylist()
        rows.setdefault(path.name.split("-")[0], []).extend(table)
    return rows


def export(release, fmt, dest, *args):
    result = CliRunner().invoke(
        cli, ["export", str(release), "--format", fmt, "--out", str(dest), *args]
    )
    assert result.exit_code == 0, result.output
    return result


def test_llava_one_conversation_per_image(release, tmp_path):
    dest = tmp_path / "llava"
    result = export(release, "llava", dest)
    rows = release_rows(release)
    assert set(rows) == {"train", "test"}  # the release has both splits
    for split, expected in rows.items():
        data = json.loads((dest / f"{split}.json").read_text())
        assert len(data) == len(expected)
        assert f"{split}: {len(expected):,} conversations" in result.output
        for entry, row in zip(data, expected, strict=True):
            assert entry["id"] == f"{row['source']}/{row['image_id']}"
            turns = entry["conversations"]
            assert [t["from"] for t in turns] == ["human", "gpt"] * len(row["pairs"])
            assert turns[0]["value"].startswith("<image>\n")
            assert sum(t["value"].count("<image>") for t in turns) == 1
            assert [t["value"] for t in turns[1::2]] == [p["answer"] for p in row["pairs"]]
            with Image.open(dest / entry["image"]) as im:
                assert im.size[0] > 0
    images = list((dest / "images").rglob("*.*"))
    assert len(images) == sum(len(r) for r in rows.values())  # each image written once
    assert not (dest / "dataset_info.json").exists()


def test_sharegpt_per_pair_as_llama_factory_reads_it(release, tmp_path):
    dest = tmp_path / "sharegpt"
    export(release, "sharegpt", dest, "--per", "pair")
    rows = release_rows(release)
    info = json.loads((dest / "dataset_info.json").read_text())
    assert set(info) == {f"dermasynth_{split}" for split in rows}
    for split, expected in rows.items():
        spec = info[f"dermasynth_{split}"]
        assert spec["formatting"] == "sharegpt" and spec["file_name"] == f"{split}.json"
        assert spec["columns"] == {"messages": "messages", "images": "images"}
        tags = spec["tags"]
        data = json.loads((dest / spec["file_name"]).read_text())
        assert len(data) == sum(len(r["pairs"]) for r in expected)
        assert Counter(e["id"] for e in data) == Counter(
            p["id"] for r in expected for p in r["pairs"]
        )
        for entry in data:
            roles = [m[tags["role_tag"]] for m in entry[spec["columns"]["messages"]]]
            assert roles == [tags["user_tag"], tags["assistant_tag"]]
            # LLaMA-Factory: as many <image> tags as images, paths relative to the dataset dir
            text = "".join(m["content"] for m in entry["messages"])
            assert text.count("<image>") == len(entry["images"]) == 1
            assert (dest / entry["images"][0]).is_file()


def test_export_refuses_bad_input(release, tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "mine.txt").write_text("keep me")
    runner = CliRunner()
    result = runner.invoke(cli, ["export", str(release), "--format", "llava", "--out", str(busy)])
    assert result.exit_code == 2 and "not an empty folder" in result.output
    assert (busy / "mine.txt").read_text() == "keep me"
    result = runner.invoke(
        cli, ["export", str(tmp_path), "--format", "llava", "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 2 and "not a release folder" in result.output
