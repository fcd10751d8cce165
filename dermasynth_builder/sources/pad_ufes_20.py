"""PAD-UFES-20 (Pacheco et al., 2020): 2,298 smartphone clinical images and a questionnaire.

ROOT holds ``metadata.csv`` (26 columns) and ``images/imgs_part_{1,2,3}/``, each part possibly
nested once more by the unzip tool. ``UNK`` and blanks are missing values.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..records import Skip
from . import register
from .base import Candidate, Row, Source, bad_row, load_csv

DIAGNOSES: dict[str, tuple[str, str]] = {
    "ACK": ("actinic keratosis", "indeterminate"),
    "BCC": ("basal cell carcinoma", "malignant"),
    "MEL": ("melanoma", "malignant"),
    "NEV": ("nevus", "benign"),
    "SCC": ("squamous cell carcinoma", "malignant"),  # includes Bowen's disease
    "SEK": ("seborrheic keratosis", "benign"),
    "BOW": ("Bowen's disease", "malignant"),
}
# yes/no history columns -> the words used in symptom lists
SYMPTOMS = {
    "itch": "itching",
    "grew": "growing",
    "hurt": "pain",
    "changed": "changing",
    "bleed": "bleeding",
    "elevation": "elevated",
}
HISTORY = (
    "smoke",
    "drink",
    "pesticide",
    "skin_cancer_history",
    "cancer_history",
    "has_piped_water",
    "has_sewage_system",
)
COUNTRY_FIX = {"BRASIL": "Brazil"}


@register
class PadUfes20(Source):
    name = "pad_ufes_20"
    extra_fields = (
        *HISTORY,
        "background_father",
        "background_mother",
        "diameter_1_mm",
        "diameter_2_mm",
        "biopsied",
        "symptoms_denied",
    )
    image_suffixes = (".png", ".jpg", ".jpeg")

    def candidates(self, root: Path, warnings: list[Skip]) -> Iterator[Candidate | Skip]:
        path = root / "metadata.csv"
        rows = load_csv(path, ("img_id", "diagnostic", "patient_id"))
        index = self.image_index(root)
        for i, values in enumerate(rows):
            row = Row(values, path.name, i + 2, warnings)
            filename = row.text("img_id")
            if filename is None:
                yield bad_row("", "img_id is empty", path.name, row.line)
                continue
            image_id = filename.rsplit(".", 1)[0]
            row.image_id = image_id
            code = row.text("diagnostic")
            name, malignancy = DIAGNOSES.get((code or "").upper(), (None, None))
            if code is not None and name is None:
                row.warn("diagnostic", f"{code!r} is not one of {', '.join(DIAGNOSES)}")
                name = code.lower()
            reported, denied = [], []
            for column, word in SYMPTOMS.items():
                answer = row.boolean(column)
                if answer is True:
                    reported.append(word)
                elif answer is False:
                    denied.append(word)
            region = row.text("region")
            record = self.make_record(
                image_id,
                index.get(filename, index.get(image_id, "")),
                "clinical",
                diagnosis=name,
                diagnosis_code=code,
                diagnosis_hierarchy=[malignancy, name] if name and malignancy else [],
                malignancy=malignancy,
                age=row.integer("age"),
                sex=row.sex("gender"),
                anatomic_site=region.lower() if region else None,
                fitzpatrick_skin_type=row.fitzpatrick("fitspatrick"),
                symptoms=reported,
                group_id=row.text("patient_id"),
                symptoms_denied=denied,
                background_father=_country(row.text("background_father")),
                background_mother=_country(row.text("background_mother")),
                diameter_1_mm=row.number("diameter_1"),
                diameter_2_mm=row.number("diameter_2"),
                biopsied=row.boolean("biopsed"),
                **{column: row.boolean(column) for column in HISTORY},
            )
            yield Candidate(record, path.name, row.line)


def _country(value: str | None) -> str | None:
    if value is None:
        return None
    return COUNTRY_FIX.get(value.upper(), value.title())
