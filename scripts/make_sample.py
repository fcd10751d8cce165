"""(Re)create the bundled synthetic sample in ``dermasynth_builder/sample/``.

Why: the readers must be tested against each source's *real* on-disk layout (folder nesting,
exact CSV headers and column order, line endings, missing-value styles, quirks), but real rows
and images cannot be shipped. This script writes a handful of invented rows per source in that
layout, with images painted by ``tests.support.synthetic.draw_lesion``.

The formats follow ``shared/reference/sources.md`` (sections 1-5). Every row is invented; no
real row, identifier or image is copied.

Determinism: the sample folder is deleted and rebuilt; image seeds come from a CRC32 of the file
name; CSVs are written with a fixed line ending (CRLF for the ISIC export, LF elsewhere, as in
the real files) and UTF-8 without BOM; JPEG/PNG encoding embeds no timestamps. Two runs give
byte-identical files.

Run from the repository root::

    /work/venv/bin/python scripts/make_sample.py
"""

from __future__ import annotations

import csv
import importlib.util
import shutil
import sys
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType

from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = REPO_ROOT / "dermasynth_builder" / "sample"

LF = "\n"
CRLF = "\r\n"

JPEG_SIZE = 240
JPEG_QUALITY = 80
PNG_SIZE = 192


def _load_synthetic() -> ModuleType:
    """Import ``tests/support/synthetic.py`` by path.

    Why: the script only needs the drawing helpers, and loading the file directly avoids
    importing the package ``__init__`` (which may pull in optional runtime dependencies).
    """
    path = REPO_ROOT / "tests" / "support" / "synthetic.py"
    spec = importlib.util.spec_from_file_location("_dermasynth_synthetic", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SYN = _load_synthetic()


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def _seed(name: str) -> int:
    """Stable per-file seed (CRC32 of the file name; Python's ``hash`` is salted per run)."""
    return zlib.crc32(name.encode("utf-8"))


def write_csv(
    path: Path, header: Sequence[str], rows: Iterable[Mapping[str, str]], line_end: str
) -> int:
    """Write ``rows`` under ``header`` with minimal quoting and a fixed line ending.

    Missing keys become empty cells; unknown keys raise, which catches typos in the tables
    below. Returns the number of data rows.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(
            fh, fieldnames=list(header), restval="", extrasaction="raise", lineterminator=line_end
        )
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


def write_jpeg(path: Path, modality: str, size: int = JPEG_SIZE) -> None:
    """Draw a lesion seeded by the file name and save it as JPEG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = SYN.draw_lesion(_seed(path.name), size, modality)
    path.write_bytes(SYN.encode_jpeg(img, quality=JPEG_QUALITY))


def write_png(
    path: Path,
    modality: str = "clinical",
    size: int = PNG_SIZE,
    transform: Callable[[Image.Image], Image.Image] | None = None,
) -> None:
    """Draw a lesion seeded by the file name, optionally transform it, and save it as PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = SYN.draw_lesion(_seed(path.name), size, modality)
    if transform is not None:
        img = transform(img)
    path.write_bytes(SYN.encode_png(img))


def _to_rgba(img: Image.Image) -> Image.Image:
    """Real PAD-UFES-20 ships some RGBA PNGs (opaque alpha); mimic that."""
    return img.convert("RGBA")


def _crop_190x191(img: Image.Image) -> Image.Image:
    """Real PAD-UFES-20 crops are square-ish but not always square (e.g. 568x569)."""
    return img.crop((0, 0, 190, 191))


def _header(line: str) -> list[str]:
    """Split a header written exactly as the real file's first line (easy to diff by eye)."""
    return line.split(",")


# ------------------------------------------------------------------------------------------
# DERM12345 (Dataverse/GitHub CSVs; images in <part>/<label>/<image_id>.jpg)
# ------------------------------------------------------------------------------------------

DERM_HEADER = _header(
    "image_id,patient_id,image_type,copyright-license,split,super_class,malignancy,"
    "main_class_1,main_class_2,sub_class,label"
)

# label -> (super_class, malignancy, main_class_1, main_class_2, sub_class), as in the real file.
DERM_TAXONOMY = {
    "acb": ("melanocytic", "benign", "banal", "compound", "acral"),
    "ak": (
        "nonmelanocytic",
        "indeterminate",
        "keratinocytic",
        "keratinocytic",
        "actinic_keratosis",
    ),
    "bcc": (
        "nonmelanocytic",
        "malignant",
        "keratinocytic",
        "keratinocytic",
        "basal_cell_carcinoma",
    ),
    "jd": ("melanocytic", "benign", "dysplastic", "junctional", "junctional"),
    "mel": ("melanocytic", "malignant", "melanoma", "melanoma", "melanoma"),
    "pg": ("nonmelanocytic", "benign", "vascular", "vascular", "pyogenic_granuloma"),
    "sa": ("nonmelanocytic", "benign", "vascular", "vascular", "spider_angioma"),
    "sk": ("nonmelanocytic", "benign", "keratinocytic", "keratinocytic", "seborrheic_keratosis"),
}

# (image_id, patient_id, label); rows sorted by label like the real files.
DERM_TRAIN = [
    ("DERM_904417", "PID_907213", "acb"),
    ("DERM_911982", "PID_907213", "acb"),
    ("DERM_917305", "PID_915520", "ak"),
    ("DERM_920846", "PID_915520", "bcc"),
    ("DERM_926031", "PID_915520", "bcc"),
    ("DERM_933574", "PID_921148", "jd"),
    ("DERM_940218", "PID_928806", "mel"),
    ("DERM_952760", "PID_936471", "sa"),
    ("DERM_958143", "PID_943092", "sk"),
]
DERM_TEST = [
    ("DERM_963388", "PID_951637", "bcc"),
    ("DERM_971025", "PID_958214", "jd"),
    ("DERM_985719", "PID_964450", "pg"),
]


def _derm_part(label: str, split: str) -> str:
    """Train labels are split alphabetically across the two train zips (acb..isl | jd..)."""
    if split == "test":
        return "derm12345_test"
    return "derm12345_train_part_1" if label <= "isl" else "derm12345_train_part_2"


def make_derm12345(root: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for split, table in (("train", DERM_TRAIN), ("test", DERM_TEST)):
        rows = []
        for image_id, patient_id, label in table:
            sup, mal, main1, main2, sub = DERM_TAXONOMY[label]
            rows.append(
                {
                    "image_id": image_id,
                    "patient_id": patient_id,
                    "image_type": "dermoscopic",
                    "copyright-license": "CC-BY",
                    "split": split,
                    "super_class": sup,
                    "malignancy": mal,
                    "main_class_1": main1,
                    "main_class_2": main2,
                    "sub_class": sub,
                    "label": label,
                }
            )
            write_jpeg(root / _derm_part(label, split) / label / f"{image_id}.jpg", "dermoscopic")
        csv_path = root / f"derm12345_metadata_{split}.csv"
        counts[csv_path.name] = write_csv(csv_path, DERM_HEADER, rows, LF)
    return counts


# ------------------------------------------------------------------------------------------
# BCN20000, figshare 2024 release (nested BCN_20k_<split>/bcn_20k_<split>/)
# ------------------------------------------------------------------------------------------

BCN_HEADER = _header(
    "bcn_filename,age_approx,anatom_site_general,diagnosis,lesion_id,capture_date,sex,split"
)

# filename number, age, site, diagnosis, lesion_id, date, sex
BCN_TRAIN = [
    (19003, "45.0", "anterior torso", "NV", "BCN_0009101", "2013-04-17", "female"),
    (19004, "45.0", "anterior torso", "NV", "BCN_0009101", "2013-04-17", "female"),
    (19008, "70.0", "lower extremity", "MEL", "BCN_0009117", "2015-09-02", "male"),
    (19011, "", "head/neck", "BCC", "BCN_0009123", "2012-11-20", "male"),
    (19015, "65.0", "upper extremity", "BKL", "BCN_0009140", "2016-01-08", ""),
    (19016, "80.0", "head/neck", "AK", "BCN_0009152", "2014-06-25", "female"),
    (19020, "75.0", "", "SCC", "BCN_0009168", "2011-03-14", "male"),
    (19023, "30.0", "lower extremity", "DF", "BCN_0009171", "2016-05-30", "female"),
]
BCN_TEST = [
    (19001, "55.0", "anterior torso", "", "BCN9205", "2016-02-11", "male"),
    (19006, "40.0", "palms/soles", "", "BCN9213", "2015-07-07", "female"),
    (19012, "85.0", "head/neck", "", "BCN9230", "2016-10-19", "male"),
]


def make_bcn20000(root: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for split, table in (("train", BCN_TRAIN), ("test", BCN_TEST)):
        rows = []
        for number, age, site, dx, lesion, date, sex in table:
            filename = f"BCN_{number:010d}.jpg"
            rows.append(
                {
                    "bcn_filename": filename,
                    "age_approx": age,
                    "anatom_site_general": site,
                    "diagnosis": dx,
                    "lesion_id": lesion,
                    "capture_date": date,
                    "sex": sex,
                    "split": split,
                }
            )
            write_jpeg(root / f"BCN_20k_{split}" / f"bcn_20k_{split}" / filename, "dermoscopic")
        csv_path = root / f"bcn_20k_{split}.csv"
        counts[csv_path.name] = write_csv(csv_path, BCN_HEADER, rows, LF)
    return counts


# ------------------------------------------------------------------------------------------
# PAD-UFES-20 (metadata.csv + images/imgs_part_{1,2,3}/, part 1 nested once more)
# ------------------------------------------------------------------------------------------

PAD_HEADER = _header(
    "patient_id,lesion_id,smoke,drink,background_father,background_mother,age,pesticide,gender,"
    "skin_cancer_history,cancer_history,has_piped_water,has_sewage_system,fitspatrick,region,"
    "diameter_1,diameter_2,diagnostic,itch,grew,hurt,changed,bleed,elevation,img_id,biopsed"
)

# (image sub-folder, transform, row written exactly like a line of the real metadata.csv).
# Two rows carry the real "missing block" (questionnaire empty, biopsed False); one lesion has
# two images and one patient two lesions; UNK, BRASIL and fitspatrick floats as in the real file.
_PadTransform = Callable[[Image.Image], Image.Image] | None
PAD_LINES: list[tuple[str, _PadTransform, str]] = [
    (
        "imgs_part_1/imgs_part_1",
        None,
        "PAT_2311,4107,,,,,9,,,,,,,,ARM,,,NEV,False,False,False,False,False,False,"
        "PAT_2311_4107_517.png,False",
    ),
    (
        "imgs_part_1/imgs_part_1",
        None,
        "PAT_2324,4119,False,True,GERMANY,ITALY,67,False,MALE,True,False,True,True,2.0,FACE,"
        "8.0,6.0,BCC,False,True,False,UNK,True,True,PAT_2324_4119_118.png,True",
    ),
    (
        "imgs_part_1/imgs_part_1",
        None,
        "PAT_2324,4120,False,True,GERMANY,ITALY,67,False,MALE,True,False,True,True,2.0,NOSE,"
        "11.0,9.0,SCC,True,UNK,True,UNK,False,True,PAT_2324_4120_904.png,True",
    ),
    (
        "imgs_part_2",
        None,
        "PAT_2338,4133,True,False,UNK,POMERANIA,72,True,MALE,False,True,True,False,2.0,FOREARM,"
        "5.0,4.0,ACK,True,False,False,False,False,True,PAT_2338_4133_61.png,True",
    ),
    (
        "imgs_part_2",
        None,
        "PAT_2338,4133,True,False,UNK,POMERANIA,72,True,MALE,False,True,True,False,2.0,FOREARM,"
        "5.0,4.0,ACK,True,False,False,False,False,True,PAT_2338_4133_288.png,True",
    ),
    (
        "imgs_part_2",
        _to_rgba,
        "PAT_2345,4151,False,False,BRASIL,BRAZIL,49,False,FEMALE,False,False,True,True,1.0,BACK,"
        "12.0,10.0,MEL,False,True,False,True,False,True,PAT_2345_4151_745.png,True",
    ),
    (
        "imgs_part_3",
        _crop_190x191,
        "PAT_2359,4166,,,,,81,,,,,,,,FACE,,,SEK,False,UNK,False,UNK,False,True,"
        "PAT_2359_4166_402.png,False",
    ),
    (
        "imgs_part_3",
        None,
        "PAT_2372,4178,False,False,ITALY,GERMANY,63,True,FEMALE,True,True,True,True,3.0,CHEST,"
        "4.0,4.0,ACK,True,False,False,False,False,False,PAT_2372_4178_233.png,False",
    ),
]


def make_pad_ufes_20(root: Path) -> dict[str, int]:
    rows = []
    for folder, transform, line in PAD_LINES:
        row = dict(zip(PAD_HEADER, line.split(","), strict=True))
        write_png(root / "images" / folder / row["img_id"], transform=transform)
        rows.append(row)
    return {"metadata.csv": write_csv(root / "metadata.csv", PAD_HEADER, rows, LF)}


# ------------------------------------------------------------------------------------------
# SCIN (bucket mirror: dataset/scin_cases.csv, dataset/scin_labels.csv, dataset/images/)
# ------------------------------------------------------------------------------------------

SCIN_CASES_HEADER = [
    "case_id",
    "source",
    "release",
    "year",
    "age_group",
    "sex_at_birth",
    "fitzpatrick_skin_type",
    "race_ethnicity_american_indian_or_alaska_native",
    "race_ethnicity_asian",
    "race_ethnicity_black_or_african_american",
    "race_ethnicity_hispanic_latino_or_spanish_origin",
    "race_ethnicity_middle_eastern_or_north_african",
    "race_ethnicity_native_hawaiian_or_pacific_islander",
    "race_ethnicity_white",
    "race_ethnicity_other_race",
    "race_ethnicity_prefer_not_to_answer",
    "textures_raised_or_bumpy",
    "textures_flat",
    "textures_rough_or_flaky",
    "textures_fluid_filled",
    "body_parts_head_or_neck",
    "body_parts_arm",
    "body_parts_palm",
    "body_parts_back_of_hand",
    "body_parts_torso_front",
    "body_parts_torso_back",
    "body_parts_genitalia_or_groin",
    "body_parts_buttocks",
    "body_parts_leg",
    "body_parts_foot_top_or_side",
    "body_parts_foot_sole",
    "body_parts_other",
    "condition_symptoms_bothersome_appearance",
    "condition_symptoms_bleeding",
    "condition_symptoms_increasing_size",
    "condition_symptoms_darkening",
    "condition_symptoms_itching",
    "condition_symptoms_burning",
    "condition_symptoms_pain",
    "condition_symptoms_no_relevant_experience",
    "other_symptoms_fever",
    "other_symptoms_chills",
    "other_symptoms_fatigue",
    "other_symptoms_joint_pain",
    "other_symptoms_mouth_sores",
    "other_symptoms_shortness_of_breath",
    "other_symptoms_no_relevant_symptoms",
    "related_category",
    "condition_duration",
    "image_1_path",
    "image_2_path",
    "image_3_path",
    "image_1_shot_type",
    "image_2_shot_type",
    "image_3_shot_type",
    "combined_race",
    "race_ethnicity_two_or_more_after_mitigation",
]

SCIN_LABELS_HEADER = [
    "case_id",
    "dermatologist_gradable_for_skin_condition_1",
    "dermatologist_gradable_for_skin_condition_2",
    "dermatologist_gradable_for_skin_condition_3",
    "dermatologist_skin_condition_on_label_name",
    "dermatologist_skin_condition_confidence",
    "weighted_skin_condition_label",
    "dermatologist_gradable_for_fitzpatrick_skin_type_1",
    "dermatologist_gradable_for_fitzpatrick_skin_type_2",
    "dermatologist_gradable_for_fitzpatrick_skin_type_3",
    "dermatologist_fitzpatrick_skin_type_label_1",
    "dermatologist_fitzpatrick_skin_type_label_2",
    "dermatologist_fitzpatrick_skin_type_label_3",
    "gradable_for_monk_skin_tone_india",
    "gradable_for_monk_skin_tone_us",
    "monk_skin_tone_label_india",
    "monk_skin_tone_label_us",
]

_YES_DEFAULT = "DEFAULT_YES_IMAGE_QUALITY_SUFFICIENT"

# Each case: (case_id, [(image_id, shot_type), ...], case columns, label columns).
# case ids and image ids are signed int64 values that a float64 cannot hold exactly.
SCIN_CASES: list[tuple[str, list[tuple[str, str]], dict[str, str], dict[str, str]]] = [
    (
        "-7215903346218817253",
        [
            ("-3320918475517263041", "CLOSE_UP"),
            ("8814350276619083527", "AT_AN_ANGLE"),
            ("-905512736281904466", "AT_DISTANCE"),
        ],
        {
            "age_group": "AGE_30_TO_39",
            "sex_at_birth": "FEMALE",
            "fitzpatrick_skin_type": "FST3",
            "race_ethnicity_white": "YES",
            "textures_raised_or_bumpy": "YES",
            "textures_rough_or_flaky": "YES",
            "body_parts_arm": "YES",
            "body_parts_leg": "YES",
            "condition_symptoms_itching": "YES",
            "condition_symptoms_burning": "YES",
            "other_symptoms_no_relevant_symptoms": "YES",
            "related_category": "RASH",
            "condition_duration": "ONE_TO_FOUR_WEEKS",
            "combined_race": "WHITE",
        },
        {
            "dermatologist_gradable_for_skin_condition_1": _YES_DEFAULT,
            "dermatologist_gradable_for_skin_condition_2": _YES_DEFAULT,
            "dermatologist_skin_condition_on_label_name": (
                "['Eczema', 'Allergic Contact Dermatitis', 'Eczema']"
            ),
            "dermatologist_skin_condition_confidence": "[3, 2, 4]",
            "weighted_skin_condition_label": (
                "{'Eczema': 0.69, 'Allergic Contact Dermatitis': 0.31}"
            ),
            "dermatologist_gradable_for_fitzpatrick_skin_type_1": "YES",
            "dermatologist_gradable_for_fitzpatrick_skin_type_2": "YES",
            "dermatologist_fitzpatrick_skin_type_label_1": "FST3",
            "dermatologist_fitzpatrick_skin_type_label_2": "FST2",
            "gradable_for_monk_skin_tone_india": "True",
            "gradable_for_monk_skin_tone_us": "True",
            "monk_skin_tone_label_india": "3.0",
            "monk_skin_tone_label_us": "4.0",
        },
    ),
    (
        "-1048271655392011877",
        [("2290174488163509312", "CLOSE_UP"), ("-6159047722830165793", "AT_DISTANCE")],
        {
            "age_group": "AGE_UNKNOWN",
            "sex_at_birth": "OTHER_OR_UNSPECIFIED",
            "textures_flat": "YES",
            "body_parts_torso_front": "YES",
            "condition_symptoms_bothersome_appearance": "YES",
            "condition_duration": "UNKNOWN",
        },
        {
            "dermatologist_gradable_for_skin_condition_1": _YES_DEFAULT,
            "dermatologist_skin_condition_on_label_name": (
                "['Acute dermatitis, NOS', 'Insect Bite']"
            ),
            "dermatologist_skin_condition_confidence": "[4, 2]",
            "weighted_skin_condition_label": "{'Acute dermatitis, NOS': 0.67, 'Insect Bite': 0.33}",
            "dermatologist_gradable_for_fitzpatrick_skin_type_1": "YES",
            "dermatologist_fitzpatrick_skin_type_label_1": "FST4",
            "gradable_for_monk_skin_tone_india": "True",
            "gradable_for_monk_skin_tone_us": "True",
            "monk_skin_tone_label_india": "5.0",
            "monk_skin_tone_label_us": "6.0",
        },
    ),
    (
        "3857120945561726409",
        [("5541608392275118874", "AT_AN_ANGLE")],
        {
            "age_group": "AGE_60_TO_69",
            "sex_at_birth": "MALE",
            "fitzpatrick_skin_type": "NONE_IDENTIFIED",
            "race_ethnicity_black_or_african_american": "YES",
            "race_ethnicity_hispanic_latino_or_spanish_origin": "YES",
            "textures_raised_or_bumpy": "YES",
            "body_parts_head_or_neck": "YES",
            "body_parts_back_of_hand": "YES",
            "condition_symptoms_itching": "YES",
            "condition_symptoms_increasing_size": "YES",
            "other_symptoms_fatigue": "YES",
            "other_symptoms_joint_pain": "YES",
            "related_category": "RASH",
            "condition_duration": "MORE_THAN_ONE_YEAR",
            "combined_race": "TWO_OR_MORE_AFTER_MITIGATION",
            "race_ethnicity_two_or_more_after_mitigation": "YES",
        },
        {
            "dermatologist_gradable_for_skin_condition_1": _YES_DEFAULT,
            "dermatologist_gradable_for_skin_condition_2": _YES_DEFAULT,
            "dermatologist_gradable_for_skin_condition_3": (
                "YES_IMAGE_QUALITY_SUFFICIENT_NO_DISCERNIBLE_PATHOLOGY"
            ),
            "dermatologist_skin_condition_on_label_name": "['Psoriasis', 'Tinea', 'Psoriasis']",
            "dermatologist_skin_condition_confidence": "[5, 2, 3]",
            "weighted_skin_condition_label": "{'Psoriasis': 0.75, 'Tinea': 0.25}",
            "dermatologist_gradable_for_fitzpatrick_skin_type_1": "YES",
            "dermatologist_gradable_for_fitzpatrick_skin_type_2": "NO",
            "dermatologist_gradable_for_fitzpatrick_skin_type_3": "YES",
            "dermatologist_fitzpatrick_skin_type_label_1": "FST5",
            "dermatologist_fitzpatrick_skin_type_label_3": "FST6",
            "gradable_for_monk_skin_tone_india": "True",
            "gradable_for_monk_skin_tone_us": "False",
            "monk_skin_tone_label_india": "8.0",
        },
    ),
    (
        "6620494017835542316",
        [("-4427716609934418250", "CLOSE_UP")],
        {
            "age_group": "AGE_18_TO_29",
            "sex_at_birth": "FEMALE",
            "fitzpatrick_skin_type": "FST1",
            "race_ethnicity_asian": "YES",
            "textures_fluid_filled": "YES",
            "body_parts_foot_sole": "YES",
            "condition_symptoms_pain": "YES",
            "other_symptoms_no_relevant_symptoms": "YES",
            "related_category": "OTHER_ISSUE_DESCRIPTION",
            "condition_duration": "LESS_THAN_ONE_WEEK",
            "combined_race": "ASIAN",
        },
        {
            "dermatologist_gradable_for_skin_condition_1": "NO_IMAGE_QUALITY_INSUFFICIENT",
            "weighted_skin_condition_label": "{}",
            "dermatologist_gradable_for_fitzpatrick_skin_type_1": "NO",
            "gradable_for_monk_skin_tone_india": "False",
            "gradable_for_monk_skin_tone_us": "False",
        },
    ),
]


def make_scin(root: Path) -> dict[str, int]:
    dataset = root / "dataset"
    cases, labels = [], []
    for case_id, images, case_cols, label_cols in sorted(SCIN_CASES, key=lambda c: c[0]):
        case = {"case_id": case_id, "source": "SCIN", "release": "1.0.0", "year": "2023"}
        case.update(case_cols)
        for n, (image_id, shot) in enumerate(images, start=1):
            case[f"image_{n}_path"] = f"dataset/images/{image_id}.png"
            case[f"image_{n}_shot_type"] = shot
            write_png(dataset / "images" / f"{image_id}.png")
        cases.append(case)
        labels.append({"case_id": case_id, **label_cols})
    return {
        "dataset/scin_cases.csv": write_csv(
            dataset / "scin_cases.csv", SCIN_CASES_HEADER, cases, LF
        ),
        "dataset/scin_labels.csv": write_csv(
            dataset / "scin_labels.csv", SCIN_LABELS_HEADER, labels, LF
        ),
    }


# ------------------------------------------------------------------------------------------
# HIBA (ISIC Archive export: metadata.csv, flat ISIC_*.jpg, attribution.txt, licenses/)
# ------------------------------------------------------------------------------------------

HIBA_HEADER = _header(
    "isic_id,attribution,copyright_license,age_approx,anatom_site_general,anatom_site_special,"
    "benign_malignant,concomitant_biopsy,dermoscopic_type,diagnosis,diagnosis_1,diagnosis_2,"
    "diagnosis_3,diagnosis_confirm_type,family_hx_mm,fitzpatrick_skin_type,image_type,lesion_id,"
    "patient_id,personal_hx_mm,sex"
)

_HIBA_NEVUS = {
    "age_approx": "35.0",
    "anatom_site_general": "palms/soles",
    "anatom_site_special": "acral palms or soles",
    "benign_malignant": "benign",
    "concomitant_biopsy": "False",
    "diagnosis": "nevus",
    "diagnosis_1": "Benign",
    "diagnosis_2": "Benign melanocytic proliferations",
    "diagnosis_3": "Nevus",
    "diagnosis_confirm_type": "single image expert consensus",
    "family_hx_mm": "False",
    "fitzpatrick_skin_type": "II",
    "lesion_id": "IL_7310485",
    "patient_id": "IP_8204117",
    "sex": "female",
}
_HIBA_MELANOMA = {
    "age_approx": "60.0",
    "anatom_site_general": "posterior torso",
    "benign_malignant": "malignant",
    "concomitant_biopsy": "True",
    "diagnosis": "melanoma",
    "diagnosis_1": "Malignant",
    "diagnosis_2": "Malignant melanocytic proliferations (Melanoma)",
    "diagnosis_3": "Melanoma, NOS",
    "diagnosis_confirm_type": "histopathology",
    "family_hx_mm": "True",
    "fitzpatrick_skin_type": "III",
    "lesion_id": "IL_7326914",
    "patient_id": "IP_8219650",
    "personal_hx_mm": "True",
    "sex": "male",
}

# (isic_id, image_type, columns)
HIBA_ROWS: list[tuple[str, str, dict[str, str]]] = [
    ("ISIC_9910214", "dermoscopic", _HIBA_NEVUS),
    ("ISIC_9910387", "clinical: close-up", _HIBA_NEVUS),
    ("ISIC_9910522", "dermoscopic", _HIBA_MELANOMA),
    ("ISIC_9910679", "clinical: overview", _HIBA_MELANOMA),
    (
        "ISIC_9910813",
        "dermoscopic",
        {
            "age_approx": "45.0",
            "anatom_site_general": "lower extremity",
            "benign_malignant": "benign",
            "concomitant_biopsy": "False",
            "diagnosis": "vascular lesion",
            "diagnosis_1": "Benign",
            "diagnosis_2": "Benign soft tissue proliferations - Vascular",
            "lesion_id": "IL_7342270",
            "patient_id": "IP_8235508",
            "personal_hx_mm": "False",
            "sex": "female",
        },
    ),
    (
        "ISIC_9910956",
        "dermoscopic",
        {
            "age_approx": "70.0",
            "anatom_site_general": "head/neck",
            "benign_malignant": "malignant",
            "concomitant_biopsy": "True",
            "diagnosis": "basal cell carcinoma",
            "diagnosis_1": "Malignant",
            "diagnosis_2": "Malignant adnexal epithelial proliferations - Follicular",
            "diagnosis_3": "Basal cell carcinoma",
            "diagnosis_confirm_type": "histopathology",
            "family_hx_mm": "False",
            "fitzpatrick_skin_type": "I",
            "lesion_id": "IL_7358841",
            "patient_id": "IP_8241936",
            "personal_hx_mm": "True",
            "sex": "male",
        },
    ),
    (
        "ISIC_9911098",
        "dermoscopic",
        {
            "age_approx": "75.0",
            "benign_malignant": "benign",
            "concomitant_biopsy": "False",
            "diagnosis": "seborrheic keratosis",
            "diagnosis_1": "Benign",
            "diagnosis_2": "Benign epidermal proliferations",
            "diagnosis_3": "Seborrheic keratosis",
            "diagnosis_confirm_type": "single image expert consensus",
            "fitzpatrick_skin_type": "IV",
            "lesion_id": "IL_7363305",
            "patient_id": "IP_8257019",
            "sex": "female",
        },
    ),
]

HIBA_ATTRIBUTION = "Hospital Italiano de Buenos Aires"

HIBA_ATTRIBUTION_TXT = (
    "Hospital Italiano de Buenos Aires\n"
    "\n"
    "Synthetic sample: the rows and images in this folder are invented (drawn by\n"
    "scripts/make_sample.py) and only mimic the layout of an ISIC Archive export of the\n"
    "HIBA collection. They contain no data from that collection.\n"
)

CC_BY_TXT = (
    "Creative Commons Attribution 4.0 International (CC BY 4.0)\n"
    "https://creativecommons.org/licenses/by/4.0/legalcode\n"
    "\n"
    "Placeholder written by scripts/make_sample.py: a real ISIC export puts the full licence\n"
    "text here. The synthetic images beside it were generated, not licensed from anyone.\n"
)


def make_hiba(root: Path) -> dict[str, int]:
    rows = []
    for isic_id, image_type, cols in sorted(HIBA_ROWS, key=lambda r: r[0]):
        row = {
            "isic_id": isic_id,
            "attribution": HIBA_ATTRIBUTION,
            "copyright_license": "CC-BY",
            "image_type": image_type,
            **cols,
        }
        if image_type == "dermoscopic":
            row["dermoscopic_type"] = "contact polarized"
        rows.append(row)
        modality = "dermoscopic" if image_type == "dermoscopic" else "clinical"
        write_jpeg(root / f"{isic_id}.jpg", modality)
    (root / "licenses").mkdir(parents=True, exist_ok=True)
    (root / "attribution.txt").write_bytes(HIBA_ATTRIBUTION_TXT.encode("utf-8"))
    (root / "licenses" / "CC-BY.txt").write_bytes(CC_BY_TXT.encode("utf-8"))
    return {"metadata.csv": write_csv(root / "metadata.csv", HIBA_HEADER, rows, CRLF)}


# ------------------------------------------------------------------------------------------
# README
# ------------------------------------------------------------------------------------------

README = """\
# Bundled synthetic sample

Everything in this folder is **invented**. The rows were written by hand and the images were
painted by `tests.support.synthetic.draw_lesion`; `scripts/make_sample.py` rebuilds the
folder byte for byte. It is **not real patient data**, and no row, identifier or image is copied
from the real datasets. Identifiers only follow the real *formats* (`DERM_`, `PID_`, `BCN_`,
`PAT_`, `IL_`, `IP_`, `ISIC_`, signed int64 SCIN ids).

Each source sits in its real on-disk layout, with the exact official CSV header and column
order, so readers can be tested against the real formats. The harmless real-world quirks
included are:

- `derm12345/`: separate train/test CSVs (LF); header uses `copyright-license` (hyphen); images
  under `derm12345_train_part_1/` (labels up to `isl`), `derm12345_train_part_2/` and
  `derm12345_test/`, each in `<label>/<image_id>.jpg`; rows sorted by label; several images per
  patient; `ak` has malignancy `indeterminate`; generic classes (`jd`, `mel`) repeat
  `main_class_2` in `sub_class`.
- `bcn20000/`: figshare 2024 release; `bcn_filename` includes `.jpg`; images nested twice
  (`BCN_20k_train/bcn_20k_train/`); test `diagnosis` is empty; train lesion ids `BCN_0009101`
  vs test `BCN9205`; two images of one lesion; `age_approx` as float with one empty; one empty
  `sex`; one empty `anatom_site_general`.
- `pad_ufes_20/`: 26-column `metadata.csv` (LF) with the `fitspatrick` misspelling and float
  values (`2.0`); two rows with the empty questionnaire block (all non-biopsied); `UNK` in
  symptom cells and in one `background_father`; `BRASIL` next to `BRAZIL`; two images of one
  lesion and two lesions of one patient; images split over `images/imgs_part_1/imgs_part_1/`
  (double nesting), `images/imgs_part_2/`, `images/imgs_part_3/`; one RGBA PNG; one 190x191 PNG.
- `scin/`: bucket mirror `dataset/`; 57-column cases and 17-column labels files; signed int64
  `case_id`s and image names that lose precision as float; `image_N_path` values are
  bucket-relative (`dataset/images/...`) and empty when absent; cases with 1, 2 and 3 images;
  `YES`/blank multi-select columns; `AGE_UNKNOWN`, `OTHER_OR_UNSPECIFIED`, `NONE_IDENTIFIED`,
  `UNKNOWN` sentinels; Python-literal list/dict label strings (one name contains a comma); one
  case with an empty weighted label (`{}`), i.e. no diagnosis. `combined_race` values are a
  guess at the real style.
- `hiba/`: ISIC Archive export with the 21-column header (CRLF), flat `ISIC_*.jpg`,
  `attribution.txt` and `licenses/CC-BY.txt` (short placeholder texts); dermoscopic and clinical
  (`clinical: close-up`, `clinical: overview`) images sharing a `lesion_id`; a vascular row with
  empty `diagnosis_3`; `Melanoma, NOS` (quoted, contains a comma); Roman-numeral
  `fitzpatrick_skin_type` with one empty; `True`/`False`/empty history columns; one empty
  `anatom_site_general`.
"""


def main(argv: list[str] | None = None) -> int:
    """Write the sample to ``dermasynth_builder/sample`` (or to the folder given as argument)."""
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]).resolve() if args else SAMPLE_DIR
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    builders: dict[str, Callable[[Path], dict[str, int]]] = {
        "derm12345": make_derm12345,
        "bcn20000": make_bcn20000,
        "pad_ufes_20": make_pad_ufes_20,
        "scin": make_scin,
        "hiba": make_hiba,
    }
    for source, build in builders.items():
        counts = build(out / source)
        summary = ", ".join(f"{name}: {n} rows" for name, n in counts.items())
        print(f"{source}: {summary}")
    (out / "README.md").write_bytes(README.encode("utf-8"))
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"total: {total} bytes in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
