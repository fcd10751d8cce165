"""BCN20000 (Hospital Clínic de Barcelona): 18,946 dermoscopic images, non-commercial licence.

Two downloads are read: the 2024 figshare release (``bcn_20k_train.csv``, ``bcn_20k_test.csv``,
``BCN_*.jpg`` flat or nested as ``BCN_20k_train/bcn_20k_train/``) and an ISIC Archive export of
the collection (``metadata.csv`` or ``bcn20000_metadata_<date>.csv`` beside ``ISIC_*.jpg``).

Official split: the release's ``split`` column (train/test). The ISIC export has none, but its
18,946 images are exactly the BCN images of the ISIC 2019 challenge (12,413 training = the 2024
release's train split, 6,533 test = its test split), so when ROOT also holds that challenge's
``ISIC_2019_Training_Metadata.csv`` / ``ISIC_2019_Test_Metadata.csv`` the export's images get
their official split from them; without those files their split is unknown (None).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..records import Skip
from . import isic, register
from .base import Candidate, Row, Source, SourceFormatError, bad_row, load_csv

# 2019/2024 diagnosis code -> (readable name, malignancy); AK as ISIC files it: indeterminate.
CODES: dict[str, tuple[str, str]] = {
    "NV": ("nevus", "benign"),
    "MEL": ("melanoma", "malignant"),
    "BCC": ("basal cell carcinoma", "malignant"),
    "BKL": ("benign keratosis", "benign"),
    "AK": ("actinic keratosis", "indeterminate"),
    "SCC": ("squamous cell carcinoma", "malignant"),
    "DF": ("dermatofibroma", "benign"),
    "VASC": ("vascular lesion", "benign"),
}
RELEASE_FILES = ("bcn_20k_train.csv", "bcn_20k_test.csv")
CHALLENGE_FILES = {
    "train": "ISIC_2019_Training_Metadata.csv",
    "test": "ISIC_2019_Test_Metadata.csv",
}


@register
class Bcn20000(Source):
    name = "bcn20000"
    extra_fields = (
        "lesion_id",
        "anatom_site_special",
        "diagnosis_confirm_type",
        "melanocytic",
        "concomitant_biopsy",
        "image_type",
        "capture_date",
    )
    image_suffixes = (".jpg", ".jpeg")

    def candidates(self, root: Path, warnings: list[Skip]) -> Iterator[Candidate | Skip]:
        release = [root / name for name in RELEASE_FILES if (root / name).is_file()]
        if release:
            yield from self._release(release, self.image_index(root), warnings)
            return
        exports = sorted(root.glob("bcn20000_metadata_*.csv"))
        export = exports[-1] if exports else root / "metadata.csv"
        if not export.is_file():
            raise SourceFormatError(
                f"metadata file not found: {root / 'bcn_20k_train.csv'} (2024 release) "
                f"nor {root / 'metadata.csv'} / bcn20000_metadata_<date>.csv (ISIC export)"
            )
        yield from self._isic(export, self.image_index(root), warnings, challenge_splits(root))

    def _release(
        self, files: list[Path], index: dict[str, str], warnings: list[Skip]
    ) -> Iterator[Candidate | Skip]:
        for path in files:
            for i, values in enumerate(load_csv(path, ("bcn_filename",))):
                row = Row(values, path.name, i + 2, warnings)
                filename = row.text("bcn_filename")
                if filename is None:
                    yield bad_row("", "bcn_filename is empty", path.name, row.line)
                    continue
                image_id = filename.rsplit(".", 1)[0] if "." in filename else filename
                row.image_id = image_id
                code = row.text("diagnosis")
                name, malignancy = CODES.get((code or "").upper(), (None, None))
                if code is not None and name is None:
                    row.warn("diagnosis", f"{code!r} is not one of {', '.join(CODES)}")
                    name = code.lower()
                record = self.make_record(
                    image_id,
                    index.get(filename, index.get(image_id, "")),
                    "dermoscopic",
                    diagnosis=name,
                    diagnosis_code=code,
                    diagnosis_hierarchy=[malignancy, name] if name and malignancy else [],
                    malignancy=malignancy,
                    age=row.integer("age_approx"),
                    sex=row.sex("sex"),
                    anatomic_site=isic.site(row),
                    group_id=row.text("lesion_id"),
                    age_approximate=True,
                    split=row.split("split", "test" if "_test" in path.stem else "train"),
                    lesion_id=row.text("lesion_id"),
                    capture_date=row.text("capture_date"),
                    image_type="dermoscopic",
                )
                yield Candidate(record, path.name, row.line)

    def _isic(
        self, path: Path, index: dict[str, str], warnings: list[Skip], splits: dict[str, str]
    ) -> Iterator[Candidate | Skip]:
        for i, values in enumerate(load_csv(path, ("isic_id",))):
            row = Row(values, path.name, i + 2, warnings)
            image_id = row.text("isic_id")
            if image_id is None:
                yield bad_row("", "isic_id is empty", path.name, row.line)
                continue
            row.image_id = image_id
            record = self.make_record(
                image_id,
                index.get(image_id, ""),
                "dermoscopic",
                **isic.diagnosis(row),
                age=row.integer("age_approx"),
                age_approximate=True,
                sex=row.sex("sex"),
                anatomic_site=isic.site(row),
                group_id=row.text("lesion_id"),
                split=splits.get(image_id),
                lesion_id=row.text("lesion_id"),
                anatom_site_special=row.text("anatom_site_special"),
                diagnosis_confirm_type=row.text("diagnosis_confirm_type"),
                melanocytic=row.boolean("melanocytic"),
                concomitant_biopsy=row.boolean("concomitant_biopsy"),
                image_type=row.text("image_type"),
            )
            yield Candidate(record, path.name, row.line)


def challenge_splits(root: Path) -> dict[str, str]:
    """``isic_id -> train|test`` from the ISIC 2019 challenge CSVs in ROOT (empty without them)."""
    out: dict[str, str] = {}
    for split, name in CHALLENGE_FILES.items():
        path = root / name
        if path.is_file():
            for values in load_csv(path, ("image",)):
                image = str(values.get("image") or "").strip()
                if image:
                    out[image] = split
    return out
