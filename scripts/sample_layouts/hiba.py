"""HIBA sample (ISIC Archive export: metadata.csv, flat ISIC_*.jpg, attribution.txt, licenses/)."""

from __future__ import annotations

from pathlib import Path

from .writers import CRLF, split_header, write_csv, write_jpeg

HIBA_HEADER = split_header(
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
