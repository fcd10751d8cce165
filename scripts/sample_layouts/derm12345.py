"""DERM12345 sample: Dataverse/GitHub CSVs; images in <part>/<label>/<image_id>.jpg."""

from __future__ import annotations

from pathlib import Path

from .writers import LF, split_header, write_csv, write_jpeg

DERM_HEADER = split_header(
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
