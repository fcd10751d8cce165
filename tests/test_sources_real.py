"""Readers on the real metadata files in ../shared, with stand-in images where the real ones are
absent (the collections themselves are not redistributable here)."""

from __future__ import annotations

import csv
import shutil
from collections import Counter

import pytest

from dermasynth_builder.sources import get_source

from .conftest import jpeg_bytes, png_bytes, real


def _no_sentinels(records) -> None:
    for rec in records:
        for key, value in rec.context().items():
            assert not (isinstance(value, str) and value.lower() in {"nan", "unk", "none", ""}), (
                rec.image_id,
                key,
                value,
            )


@pytest.fixture(scope="module")
def pad_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("pad")
    shutil.copy(real("pad-ufes-20", "metadata.csv"), root / "metadata.csv")
    nested = root / "images" / "imgs_part_1" / "imgs_part_1"
    nested.mkdir(parents=True)
    (root / "images" / "imgs_part_2").mkdir()
    real_images = {p.name: p for p in real("pad-ufes-20", "images").glob("*.png")}
    stand_in = png_bytes()
    with open(root / "metadata.csv", newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            name = row["img_id"]
            folder = nested if i % 2 else root / "images" / "imgs_part_2"
            if name in real_images:
                shutil.copy(real_images[name], folder / name)
            else:
                (folder / name).write_bytes(stand_in)
    return root


def test_pad_ufes_20_real_metadata(pad_root):
    result = get_source("pad_ufes_20").read(pad_root)
    assert len(result.records) == 2298 and not result.skipped and not result.warnings
    codes = Counter(r.diagnosis_code for r in result.records)
    assert codes == {"BCC": 845, "ACK": 730, "NEV": 244, "SEK": 235, "SCC": 192, "MEL": 52}
    # the 804-row missing block reads as nulls, never as strings
    assert sum(r.sex is None for r in result.records) == 804
    assert sum(r.fitzpatrick_skin_type is None for r in result.records) == 804
    assert sum(r.extra["smoke"] is None for r in result.records) == 804
    assert sum(r.extra["biopsied"] is True for r in result.records) == 1342
    # UNK in the yes/no columns is neither reported nor denied: grew has 402 UNK
    grew_known = sum(
        "growing" in r.symptoms or "growing" in r.extra["symptoms_denied"] for r in result.records
    )
    assert grew_known == 2298 - 402
    assert {r.fitzpatrick_skin_type for r in result.records} == {
        None,
        "I",
        "II",
        "III",
        "IV",
        "V",
        "VI",
    }
    assert Counter(r.anatomic_site for r in result.records)["face"] == 570
    assert len({r.group_id for r in result.records}) == 1373
    assert "Brazil" in {r.extra["background_father"] for r in result.records}
    assert "BRASIL" not in {r.extra["background_father"] for r in result.records}
    _no_sentinels(result.records)


def test_pad_ufes_20_real_images_including_rgba(pad_root):
    from dermasynth_builder.images import check_image

    for path in real("pad-ufes-20", "images").glob("*.png"):
        assert check_image(path) is None, path


@pytest.fixture(scope="module")
def bcn_isic_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("bcn")
    src = real("bcn20000", "bcn20000_metadata_2025-07-22.csv")
    shutil.copy(src, root / src.name)
    folder = root / "ISIC-images"
    folder.mkdir()
    data = jpeg_bytes()
    with open(src, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            (folder / f"{row['isic_id']}.jpg").write_bytes(data)
    return root


def test_bcn20000_isic_export(bcn_isic_root):
    result = get_source("bcn20000").read(bcn_isic_root)
    assert len(result.records) == 18946 and not result.skipped and not result.warnings
    dx = Counter(r.diagnosis for r in result.records)
    assert dx["nevus"] == 5647
    assert dx["melanoma"] == 4003
    assert dx["basal cell carcinoma"] == 3676
    assert dx["vascular lesion"] == 151  # only diagnosis_2 present
    assert dx[None] == 1156  # no diagnosis at all: kept, with a null diagnosis
    assert Counter(r.malignancy for r in result.records) == {
        "malignant": 8871,
        "benign": 7831,
        "indeterminate": 1088,
        None: 1156,
    }
    assert sum(r.age is None for r in result.records) == 121
    assert sum(r.sex is None for r in result.records) == 117
    assert len({r.group_id for r in result.records}) == 5440
    rec = next(r for r in result.records if r.diagnosis_code == "Melanoma, NOS")
    assert rec.diagnosis_hierarchy[0] == "Malignant" and rec.license == "CC BY-NC 4.0"
    assert rec.image_path.startswith("ISIC-images/")
    _no_sentinels(result.records)
    # the export carries no split column: unknown unless the ISIC 2019 challenge files say
    assert {r.split for r in result.records} == {None}
    assert all(r.age_approximate for r in result.records)


def test_bcn20000_isic_export_official_split_from_challenge_files(bcn_isic_root, tmp_path):
    root = tmp_path / "bcn"
    shutil.copytree(bcn_isic_root, root)
    for name in ("ISIC_2019_Training_Metadata.csv", "ISIC_2019_Test_Metadata.csv"):
        shutil.copy(real("bcn20000", name), root / name)
    result = get_source("bcn20000").read(root)
    assert len(result.records) == 18946 and not result.skipped
    # 12,413 ISIC 2019 training images = the 2024 release's train; 6,533 test images = its test
    assert Counter(r.split for r in result.records) == {"train": 12413, "test": 6533}
    # the 1,156 images without any diagnosis are all official test images
    assert {r.split for r in result.records if r.diagnosis is None} == {"test"}


def test_bcn20000_2024_release_test_split(tmp_path):
    src = real("bcn20000", "bcn_20k_test.HEAD100.csv")
    shutil.copy(src, tmp_path / "bcn_20k_test.csv")
    nested = tmp_path / "BCN_20k_test" / "bcn_20k_test"
    nested.mkdir(parents=True)
    data = jpeg_bytes()
    with open(src, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        (nested / row["bcn_filename"]).write_bytes(data)
    result = get_source("bcn20000").read(tmp_path)
    assert len(result.records) == len(rows) == 100 and not result.skipped
    assert all(r.diagnosis is None and r.split == "test" for r in result.records)
    assert all(r.age_approximate for r in result.records)
    assert result.records[0].group_id.startswith("BCN")
    assert result.records[0].image_path.startswith("BCN_20k_test/bcn_20k_test/BCN_")
    _no_sentinels(result.records)


def test_derm12345_excerpts(tmp_path):
    data = jpeg_bytes()
    total = 0
    for split, name in (("train", "derm12345_metadata_train"), ("test", "derm12345_metadata_test")):
        src = real("derm12345", f"{name}.EXCERPT_from_{split}_loaded.csv")
        shutil.copy(src, tmp_path / f"{name}.csv")
        with open(src, newline="") as fh:
            for row in csv.DictReader(fh):
                total += 1
                part = (
                    "derm12345_test"
                    if split == "test"
                    else (
                        "derm12345_train_part_1"
                        if row["label"] < "isl"
                        else "derm12345_train_part_2"
                    )
                )
                folder = tmp_path / part / row["label"]
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{row['image_id']}.jpg").write_bytes(data)
    result = get_source("derm12345").read(tmp_path)
    assert len(result.records) == total == 36 and not result.skipped and not result.warnings
    by_code = {r.diagnosis_code: r for r in result.records}
    assert by_code["acb"].diagnosis == "acral compound nevus"
    assert by_code["mpd"].diagnosis == "mammary Paget disease"
    assert by_code["mpd"].malignancy == "malignant"
    assert by_code["bcc"].diagnosis_hierarchy[0] == "non-melanocytic"
    # generic classes repeat main_class_2 in sub_class; the hierarchy does not repeat itself
    jd = by_code["jd"].diagnosis_hierarchy
    assert len(jd) == len(set(x.lower() for x in jd))
    assert Counter(r.split for r in result.records) == {"train": 32, "test": 4}
    assert all(r.group_id.startswith("PID_") for r in result.records)
    _no_sentinels(result.records)


def test_hiba_excerpt(tmp_path):
    src = real("hiba", "hiba_metadata.EXCERPT_5rows_from_DermaSynth_notebook.csv")
    shutil.copy(src, tmp_path / "metadata.csv")
    data = jpeg_bytes()
    with open(src, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        (tmp_path / f"{row['isic_id']}.jpg").write_bytes(data)
    result = get_source("hiba").read(tmp_path)
    assert len(result.records) == len(rows) == 5 and not result.skipped and not result.warnings
    for rec, row in zip(result.records, rows, strict=True):
        assert rec.fitzpatrick_skin_type == (row["fitzpatrick_skin_type"] or None)
        expected = "clinical" if row["image_type"].startswith("clinical") else "dermoscopic"
        assert rec.modality == expected
        assert rec.diagnosis_code == (
            row["diagnosis_3"] or row["diagnosis_2"] or row["diagnosis_1"]
        )
        assert rec.malignancy == row["diagnosis_1"].lower()
    assert any(r.diagnosis == "melanoma" for r in result.records)
    _no_sentinels(result.records)
