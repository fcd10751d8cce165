"""Bad input: each row ends as a record or a skip with a reason; a broken folder is an error."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dermasynth_builder.cli import cli
from dermasynth_builder.records import (
    DUPLICATE_IMAGE,
    IMAGE_MISSING,
    IMAGE_UNREADABLE,
    PATH_ESCAPES_ROOT,
)
from dermasynth_builder.sources import SourceFormatError, get_source

from .conftest import jpeg_bytes, png_bytes

PAD_HEADER = (
    "patient_id,lesion_id,smoke,drink,background_father,background_mother,age,pesticide,gender,"
    "skin_cancer_history,cancer_history,has_piped_water,has_sewage_system,fitspatrick,region,"
    "diameter_1,diameter_2,diagnostic,itch,grew,hurt,changed,bleed,elevation,img_id,biopsed"
).split(",")


def write_csv(path: Path, header: list[str], rows: list[dict], newline: str = "\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, header, lineterminator=newline)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in header})


def pad_row(img: str, **values) -> dict:
    base = dict(
        patient_id="PAT_1",
        lesion_id="1",
        age="50",
        region="FACE",
        diagnostic="BCC",
        itch="True",
        grew="UNK",
        hurt="False",
        changed="UNK",
        bleed="False",
        elevation="True",
        img_id=img,
        biopsed="True",
    )
    base.update(values)
    return base


@pytest.fixture
def pad_quirks(tmp_path):
    images = tmp_path / "images" / "imgs_part_1" / "imgs_part_1"
    images.mkdir(parents=True)
    (images / "PAT_1_1_1.png").write_bytes(png_bytes())
    (images / "PAT_1_1_2.png").write_bytes(png_bytes(mode="RGBA"))
    (images / "PAT_1_1_3.png").write_bytes(b"")
    (images / "PAT_1_1_4.png").write_bytes(png_bytes(64)[:-40])
    (images / "PAT_1_1_5.png").write_bytes(b"this is not an image at all")
    rows = [
        pad_row(
            "PAT_1_1_1.png", smoke="UNK", gender="", fitspatrick="2.0", background_father="BRASIL"
        ),
        pad_row("PAT_1_1_2.png", age="abc", gender="FEMALE", fitspatrick="9.0"),
        pad_row("PAT_1_1_3.png"),
        pad_row("PAT_1_1_4.png"),
        pad_row("PAT_1_1_5.png"),
        pad_row("PAT_1_1_6.png"),  # no such file
        pad_row("PAT_1_1_1.png"),  # the same image again
        pad_row(""),  # no image id at all
    ]
    write_csv(tmp_path / "metadata.csv", PAD_HEADER, rows)
    return tmp_path


def reasons(result) -> dict[str, str]:
    return {f"{s.image_id}@{s.line}": s.reason for s in result.skipped}


def test_pad_quirks_each_row_is_a_record_or_a_skip(pad_quirks):
    result = get_source("pad_ufes_20").read(pad_quirks)
    assert [r.image_id for r in result.records] == ["PAT_1_1_1", "PAT_1_1_2"]
    assert reasons(result) == {
        "PAT_1_1_3@4": IMAGE_UNREADABLE,
        "PAT_1_1_4@5": IMAGE_UNREADABLE,
        "PAT_1_1_5@6": IMAGE_UNREADABLE,
        "PAT_1_1_6@7": IMAGE_MISSING,
        "PAT_1_1_1@8": DUPLICATE_IMAGE,
        "@9": "bad row",
    }
    details = {s.image_id: s.detail for s in result.skipped}
    assert details["PAT_1_1_3"].endswith("zero bytes")
    assert details["PAT_1_1_4"].endswith("truncated")
    assert details["PAT_1_1_5"].endswith("not an image")
    assert len(result.records) + len(result.skipped) == 8
    first, second = result.records
    assert first.extra["smoke"] is None and first.sex is None
    assert first.fitzpatrick_skin_type == "II" and first.extra["background_father"] == "Brazil"
    assert first.symptoms == ["itching", "elevated"]
    assert first.extra["symptoms_denied"] == ["pain", "bleeding"]
    # odd values become null plus a warning naming file, line and column
    assert second.age is None and second.fitzpatrick_skin_type is None and second.sex == "female"
    warned = {(w.image_id, w.file, w.line, w.detail.split(":")[0]) for w in result.warnings}
    assert warned == {
        ("PAT_1_1_2", "metadata.csv", 3, "age"),
        ("PAT_1_1_2", "metadata.csv", 3, "fitspatrick"),
    }


def test_truncated_jpeg_is_unreadable(tmp_path):
    write_csv(
        tmp_path / "metadata.csv",
        ["isic_id", "image_type", "diagnosis_1"],
        [
            {"isic_id": "ISIC_0000001", "image_type": "dermoscopic", "diagnosis_1": "Benign"},
            {
                "isic_id": "ISIC_0000002",
                "image_type": "clinical: overview",
                "diagnosis_1": "Benign",
            },
            {"isic_id": "ISIC_0000003", "image_type": "dermoscopic", "diagnosis_1": "Benign"},
        ],
        newline="\r\n",
    )
    (tmp_path / "ISIC_0000001.jpg").write_bytes(jpeg_bytes(64))
    (tmp_path / "ISIC_0000002.jpg").write_bytes(jpeg_bytes(64))
    (tmp_path / "ISIC_0000003.jpg").write_bytes(jpeg_bytes(64)[:-100])
    result = get_source("hiba").read(tmp_path)
    assert [r.modality for r in result.records] == ["dermoscopic", "clinical"]
    assert [(s.image_id, s.reason) for s in result.skipped] == [("ISIC_0000003", IMAGE_UNREADABLE)]
    assert result.records[0].diagnosis == "benign lesion"  # only diagnosis_1 known


SCIN_CASES = [
    "case_id",
    "age_group",
    "sex_at_birth",
    "fitzpatrick_skin_type",
    "textures_raised_or_bumpy",
    "textures_flat",
    "body_parts_arm",
    "body_parts_torso_front",
    "condition_symptoms_itching",
    "condition_symptoms_no_relevant_experience",
    "other_symptoms_fever",
    "other_symptoms_no_relevant_symptoms",
    "related_category",
    "condition_duration",
    "image_1_path",
    "image_2_path",
    "image_3_path",
    "image_1_shot_type",
    "image_2_shot_type",
    "image_3_shot_type",
]
SCIN_LABELS = [
    "case_id",
    "dermatologist_skin_condition_on_label_name",
    "dermatologist_skin_condition_confidence",
    "weighted_skin_condition_label",
    "dermatologist_fitzpatrick_skin_type_label_1",
]


@pytest.fixture
def scin_quirks(tmp_path):
    images = tmp_path / "dataset" / "images"
    images.mkdir(parents=True)
    for name in ("-5669089898008966381", "3445096909671059178", "-1", "-2"):
        (images / f"{name}.png").write_bytes(png_bytes())
    (tmp_path.parent / "outside.png").write_bytes(png_bytes())
    big = "-9223372036854775807"  # would lose its last digits as a float
    write_csv(
        tmp_path / "dataset" / "scin_cases.csv",
        SCIN_CASES,
        [
            {
                "case_id": big,
                "age_group": "AGE_30_TO_39",
                "sex_at_birth": "FEMALE",
                "fitzpatrick_skin_type": "FST3",
                "textures_raised_or_bumpy": "YES",
                "body_parts_arm": "YES",
                "body_parts_torso_front": "YES",
                "condition_symptoms_itching": "YES",
                "condition_symptoms_no_relevant_experience": "YES",
                "other_symptoms_fever": "YES",
                "related_category": "RASH",
                "condition_duration": "ONE_TO_FOUR_WEEKS",
                "image_1_path": "dataset/images/-5669089898008966381.png",
                "image_2_path": "dataset/images/3445096909671059178.png",
                "image_1_shot_type": "CLOSE_UP",
                "image_2_shot_type": "AT_AN_ANGLE",
            },
            {
                "case_id": "42",
                "age_group": "AGE_UNKNOWN",
                "sex_at_birth": "OTHER_OR_UNSPECIFIED",
                "fitzpatrick_skin_type": "NONE_IDENTIFIED",
                "condition_duration": "UNKNOWN",
                "image_1_path": "dataset/images/3445096909671059178.png",  # reused by a second case
                "image_2_path": "dataset/images/../../../outside.png",
                "image_3_path": "dataset/images/-1.png",
            },
            {"case_id": "43", "image_1_path": "dataset/images/-2.png"},
            {"case_id": "44", "image_1_path": "dataset/images/404.png"},
        ],
    )
    write_csv(
        tmp_path / "dataset" / "scin_labels.csv",
        SCIN_LABELS,
        [
            {
                "case_id": big,
                "dermatologist_skin_condition_on_label_name": "['Eczema', 'Acute dermatitis, NOS']",
                "dermatologist_skin_condition_confidence": "[3, 2]",
                "weighted_skin_condition_label": "{'Acute dermatitis, NOS': 0.31, 'Eczema': 0.69}",
            },
            {
                "case_id": "42",
                "weighted_skin_condition_label": "{}",
                "dermatologist_fitzpatrick_skin_type_label_1": "FST5",
            },
            {
                "case_id": "43",
                "weighted_skin_condition_label": "__import__('os').system('touch PWNED')",
            },
        ],
    )
    return tmp_path


def test_scin_quirks(scin_quirks, tmp_path):
    result = get_source("scin").read(scin_quirks)
    ids = [r.image_id for r in result.records]
    assert ids == ["-5669089898008966381", "3445096909671059178", "-1", "-2"]
    assert {(s.image_id, s.reason) for s in result.skipped} == {
        ("3445096909671059178", DUPLICATE_IMAGE),
        ("outside", PATH_ESCAPES_ROOT),
        ("404", IMAGE_MISSING),
    }
    first = result.records[0]
    assert first.group_id == "-9223372036854775807"  # case ids stay exact text
    assert first.differential == {"Eczema": 0.69, "Acute dermatitis, NOS": 0.31}
    assert first.diagnosis == "Eczema" and first.fitzpatrick_self_reported == "III"
    assert first.fitzpatrick_skin_type is None  # no dermatologist estimate: not the self-report
    assert first.symptoms == ["itching"] and first.extra["other_symptoms"] == ["fever"]
    assert first.textures == ["raised or bumpy"] and first.body_parts == ["arm", "torso front"]
    assert first.extra["age_group"] == "30 to 39" and first.extra["shot_type"] == "close up"
    assert first.extra["condition_duration"] == "one to four weeks"
    unlabeled = result.records[2]
    assert unlabeled.diagnosis is None and unlabeled.differential == {}
    assert unlabeled.fitzpatrick_skin_type == "V" and unlabeled.fitzpatrick_self_reported is None
    assert unlabeled.sex is None and unlabeled.extra["age_group"] is None
    assert unlabeled.fitzpatrick_skin_type == "V"  # dermatologist label when self-report missing
    assert unlabeled.extra["condition_duration"] is None
    # a label that is code is never run, only reported
    assert not (Path.cwd() / "PWNED").exists()
    assert [w.detail.split(":")[0] for w in result.warnings] == ["weighted_skin_condition_label"]


def test_missing_metadata_file_is_a_clear_error(tmp_path):
    with pytest.raises(SourceFormatError, match="derm12345_metadata_train.csv"):
        get_source("derm12345").read(tmp_path)
    with pytest.raises(SourceFormatError, match="scin_cases.csv"):
        get_source("scin").read(tmp_path)
    with pytest.raises(SourceFormatError, match="not a folder"):
        get_source("hiba").read(tmp_path / "nope")


def test_missing_required_column_names_file_and_column(tmp_path):
    write_csv(tmp_path / "metadata.csv", ["patient_id", "img_id"], [{"patient_id": "PAT_1"}])
    with pytest.raises(SourceFormatError) as info:
        get_source("pad_ufes_20").read(tmp_path)
    assert "metadata.csv" in str(info.value) and "'diagnostic'" in str(info.value)


def test_cli_exit_codes_and_json(pad_quirks, tmp_path):
    runner = CliRunner()
    bad = runner.invoke(cli, ["sources", "check", "pad_ufes_20", str(pad_quirks), "--json"])
    assert bad.exit_code == 1, bad.output
    payload = json.loads(bad.output)
    assert payload["source"] == "pad_ufes_20" and payload["records"] == 2
    assert {"image_id", "reason"} <= set(payload["skipped"][0])
    assert payload["skipped_by_reason"] == {
        IMAGE_UNREADABLE: 3,
        IMAGE_MISSING: 1,
        DUPLICATE_IMAGE: 1,
        "bad row": 1,
    }
    human = runner.invoke(cli, ["sources", "check", "pad_ufes_20", str(pad_quirks)])
    assert human.exit_code == 1
    assert "image unreadable: 3" in human.output and "metadata.csv:6" in human.output
    missing = runner.invoke(cli, ["sources", "check", "derm12345", str(tmp_path / "empty")])
    assert missing.exit_code == 2
    (tmp_path / "empty").mkdir()
    missing = runner.invoke(cli, ["sources", "check", "derm12345", str(tmp_path / "empty")])
    assert missing.exit_code == 2 and "derm12345_metadata_train.csv" in missing.output
    assert "Traceback" not in missing.output
    unknown = runner.invoke(cli, ["sources", "check", "isic2099", str(tmp_path)])
    assert unknown.exit_code == 2
