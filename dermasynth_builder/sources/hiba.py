"""HIBA (Hospital Italiano de Buenos Aires, 2019-2022): ~1,616 dermoscopic and clinical images.

Distributed only as an ISIC Archive export: ``metadata.csv`` (or the DOI-named CSV) beside flat
``ISIC_*.jpg`` files. Columns drift between export dates: all but ``isic_id`` are optional.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..records import Skip
from . import isic, register
from .base import Candidate, Row, Source, SourceFormatError, bad_row, load_csv

METADATA = ("metadata.csv", "hospital-italiano-de-buenos-aires-skin-lesions-images-2019-2022.csv")


@register
class Hiba(Source):
    name = "hiba"
    extra_fields = (
        "lesion_id",
        "patient_id",
        "anatom_site_special",
        "dermoscopic_type",
        "image_type",
        "diagnosis_confirm_type",
        "family_hx_mm",
        "personal_hx_mm",
        "concomitant_biopsy",
    )
    image_suffixes = (".jpg", ".jpeg", ".png")

    def candidates(self, root: Path, warnings: list[Skip]) -> Iterator[Candidate | Skip]:
        path = next((root / n for n in METADATA if (root / n).is_file()), None)
        if path is None:
            raise SourceFormatError(f"metadata file not found: {root / METADATA[0]}")
        index = self.image_index(root)
        for i, values in enumerate(load_csv(path, ("isic_id",))):
            row = Row(values, path.name, i + 2, warnings)
            image_id = row.text("isic_id")
            if image_id is None:
                yield bad_row("", "isic_id is empty", path.name, row.line)
                continue
            row.image_id = image_id
            image_type = row.text("image_type")
            dermoscopic_type = row.text("dermoscopic_type")
            if image_type is not None:
                modality = (
                    "clinical" if image_type.lower().startswith("clinical") else "dermoscopic"
                )
            else:
                modality = "dermoscopic" if dermoscopic_type else "clinical"
            record = self.make_record(
                image_id,
                index.get(image_id, ""),
                modality,
                **isic.diagnosis(row),
                age=row.integer("age_approx"),
                age_approximate=True,
                sex=row.sex("sex"),
                anatomic_site=isic.site(row),
                fitzpatrick_skin_type=row.fitzpatrick("fitzpatrick_skin_type"),
                group_id=row.text("patient_id") or row.text("lesion_id"),
                lesion_id=row.text("lesion_id"),
                patient_id=row.text("patient_id"),
                anatom_site_special=row.text("anatom_site_special"),
                dermoscopic_type=dermoscopic_type,
                image_type=image_type,
                diagnosis_confirm_type=row.text("diagnosis_confirm_type"),
                family_hx_mm=row.boolean("family_hx_mm"),
                personal_hx_mm=row.boolean("personal_hx_mm"),
                concomitant_biopsy=row.boolean("concomitant_biopsy"),
            )
            yield Candidate(record, path.name, row.line)
