"""DERM12345 (Yilmaz et al., Sci Data 2024): 12,345 dermoscopic images in 40 sub-classes.

ROOT holds ``derm12345_metadata_train.csv`` and/or ``derm12345_metadata_test.csv`` and the images
as ``<part>/<label>/<image_id>.jpg`` under ``derm12345_train_part_1/``, ``derm12345_train_part_2/``
and ``derm12345_test/`` (or merged ``train/<label>/``, ``test/<label>/``, or flat).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..records import Skip
from . import register
from .base import Candidate, Row, Source, SourceFormatError, bad_row, load_csv, readable

# label code -> (readable name, malignancy when the file lacks it); from the official taxonomy.
LABELS: dict[str, tuple[str, str]] = {
    "acb": ("acral compound nevus", "benign"),
    "ccb": ("congenital compound nevus", "benign"),
    "mcb": ("Miescher nevus", "benign"),
    "cb": ("compound nevus", "benign"),
    "bdb": ("blue nevus", "benign"),
    "db": ("dermal nevus", "benign"),
    "ajb": ("acral junctional nevus", "benign"),
    "cjb": ("congenital junctional nevus", "benign"),
    "jb": ("junctional nevus", "benign"),
    "acd": ("acral compound dysplastic nevus", "benign"),
    "ccd": ("congenital compound dysplastic nevus", "benign"),
    "cd": ("compound dysplastic nevus", "benign"),
    "ajd": ("acral junctional dysplastic nevus", "benign"),
    "srjd": ("Spitz/Reed nevus", "benign"),
    "jd": ("junctional dysplastic nevus", "benign"),
    "rd": ("recurrent dysplastic nevus", "benign"),
    "isl": ("ink-spot lentigo", "benign"),
    "ls": ("lentigo simplex", "benign"),
    "sl": ("solar lentigo", "benign"),
    "anm": ("acral nodular melanoma", "malignant"),
    "alm": ("acral lentiginous melanoma", "malignant"),
    "lm": ("lentigo maligna", "malignant"),
    "lmm": ("lentigo maligna melanoma", "malignant"),
    "mel": ("melanoma", "malignant"),
    "sk": ("seborrheic keratosis", "benign"),
    "lk": ("lichenoid keratosis", "benign"),
    "df": ("dermatofibroma", "benign"),
    "angk": ("angiokeratoma", "benign"),
    "ha": ("hemangioma", "benign"),
    "la": ("lymphangioma", "benign"),
    "pg": ("pyogenic granuloma", "benign"),
    "sa": ("spider angioma", "benign"),
    "ak": ("actinic keratosis", "indeterminate"),
    "bcc": ("basal cell carcinoma", "malignant"),
    "bd": ("Bowen's disease", "malignant"),
    "ch": ("cutaneous horn", "malignant"),
    "mpd": ("mammary Paget disease", "malignant"),
    "scc": ("squamous cell carcinoma", "malignant"),
    "dfsp": ("dermatofibrosarcoma protuberans", "malignant"),
    "ks": ("Kaposi sarcoma", "malignant"),
}
METADATA = ("derm12345_metadata_train", "derm12345_metadata_test")
HIERARCHY = ("super_class", "main_class_1", "main_class_2", "sub_class")


@register
class Derm12345(Source):
    name = "derm12345"
    extra_fields = HIERARCHY
    image_suffixes = (".jpg", ".jpeg")

    def candidates(self, root: Path, warnings: list[Skip]) -> Iterator[Candidate | Skip]:
        files = [
            path
            for stem in METADATA
            for path in (root / f"{stem}.csv", root / f"{stem}.tab")
            if path.is_file()
        ]
        if not files:
            raise SourceFormatError(
                f"metadata file not found: {root / 'derm12345_metadata_train.csv'} "
                "(nor derm12345_metadata_test.csv)"
            )
        index = self.image_index(root)
        for path in files:
            for i, values in enumerate(load_csv(path, ("image_id", "label"))):
                row = Row(values, path.name, i + 2, warnings)
                image_id = row.text("image_id")
                if image_id is None:
                    yield bad_row("", "image_id is empty", path.name, row.line)
                    continue
                row.image_id = image_id
                code = row.text("label")
                name, default_malignancy = LABELS.get((code or "").lower(), (None, None))
                if code is not None and name is None:
                    row.warn("label", f"{code!r} is not one of the 40 DERM12345 codes")
                    name = readable(code)
                malignancy = row.text("malignancy")
                if malignancy is not None and malignancy.lower() not in (
                    "benign",
                    "malignant",
                    "indeterminate",
                ):
                    row.warn("malignancy", f"{malignancy!r} is not benign/malignant/indeterminate")
                    malignancy = None
                levels = {col: readable(row.text(col)) for col in HIERARCHY}
                if levels["super_class"] == "nonmelanocytic":
                    levels["super_class"] = "non-melanocytic"
                hierarchy: list[str] = []
                for level in [*levels.values(), name]:
                    if level and (not hierarchy or hierarchy[-1].lower() != level.lower()):
                        hierarchy.append(level)
                record = self.make_record(
                    image_id,
                    index.get(image_id, ""),
                    "dermoscopic",
                    diagnosis=name,
                    diagnosis_code=code,
                    diagnosis_hierarchy=hierarchy,
                    malignancy=(malignancy or default_malignancy or "").lower() or None,
                    group_id=row.text("patient_id"),
                    split=row.split("split", "test" if "_test" in path.stem else "train"),
                    **levels,
                )
                yield Candidate(record, path.name, row.line)
