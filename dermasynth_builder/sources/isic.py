"""Shared reading of ISIC Archive exports (HIBA, the BCN20000 collection, DERM12345's bundle).

ISIC exports change columns over time: older ones carry ``diagnosis`` and ``benign_malignant``,
newer ones only the hierarchical ``diagnosis_1..5`` (and ``melanocytic``). Read whichever exist.
"""

from __future__ import annotations

from .base import Row

# ISIC's taxonomy phrasing -> the plain name a caption should use.
_PLAIN = {
    "melanoma, nos": "melanoma",
    "squamous cell carcinoma, nos": "squamous cell carcinoma",
    "solar or actinic keratosis": "actinic keratosis",
    "lichen planus like keratosis": "lichen planus-like keratosis",
    "benign soft tissue proliferations - vascular": "vascular lesion",
    "benign soft tissue proliferations - fibro-histiocytic": "fibro-histiocytic lesion",
    "benign melanocytic proliferations": "benign melanocytic lesion",
    "malignant melanocytic proliferations (melanoma)": "melanoma",
    "benign epidermal proliferations": "benign epidermal lesion",
    "indeterminate epidermal proliferations": "indeterminate epidermal lesion",
    "malignant epidermal proliferations": "malignant epidermal lesion",
    "malignant adnexal epithelial proliferations - follicular": "malignant adnexal tumour",
    "benign": "benign lesion",
    "malignant": "malignant lesion",
    "indeterminate": "indeterminate lesion",
}
_MALIGNANCY = {"benign": "benign", "malignant": "malignant", "indeterminate": "indeterminate"}


def plain_name(value: str) -> str:
    """A readable diagnosis from an ISIC taxonomy term (``Melanoma, NOS`` -> ``melanoma``)."""
    low = value.strip().lower()
    if low in _PLAIN:
        return _PLAIN[low]
    # keep capitals of eponyms ("Bowen's disease") but lower the sentence case of the rest
    return value[:1].lower() + value[1:] if value[1:2].islower() else value


def diagnosis(row: Row) -> dict[str, object]:
    """Diagnosis fields from an ISIC row: the deepest ``diagnosis_N`` present, else the legacy
    ``diagnosis`` column; malignancy from ``diagnosis_1``, else legacy ``benign_malignant``."""
    hierarchy = [v for n in range(1, 6) if (v := row.text(f"diagnosis_{n}")) is not None]
    legacy = row.text("diagnosis")
    specific = None
    for n in range(5, 1, -1):
        specific = row.text(f"diagnosis_{n}")
        if specific is not None:
            break
    code = specific or legacy or row.text("diagnosis_1")
    malignancy = None
    for column in ("diagnosis_1", "benign_malignant"):
        value = row.text(column)
        if value is None:
            continue
        malignancy = _MALIGNANCY.get(value.lower())
        if malignancy is None:
            row.warn(column, f"{value!r} is not benign/malignant/indeterminate; ignored")
        break
    return {
        "diagnosis": plain_name(code) if code else None,
        "diagnosis_code": code,
        "diagnosis_hierarchy": hierarchy,
        "malignancy": malignancy,
    }


def site(row: Row) -> str | None:
    value = row.text("anatom_site_general")
    return value.lower() if value else None
