"""The one list of sources: name, order, licence, attribution, citation and layout.

Readers, planning, packaging, the hub builder and the card all read it, so a source is described
once. It imports nothing heavy: ``dermasynth --help`` and the card read it without pandas.
"""

from __future__ import annotations

from dataclasses import dataclass


class UnknownLicenseError(ValueError):
    """A licence name with no entry in ``LICENSES``: the card would mislabel it."""


@dataclass(frozen=True, slots=True)
class License:
    name: str  # as written in every row and the card, e.g. "CC BY 4.0"
    hub_id: str  # the Hub's licence id; "other" needs license_name and license_link
    link: str
    hub_name: str | None = None  # for hub_id "other"


LICENSES: dict[str, License] = {
    "CC BY 4.0": License("CC BY 4.0", "cc-by-4.0", "https://creativecommons.org/licenses/by/4.0/"),
    "CC BY-NC 4.0": License(
        "CC BY-NC 4.0", "cc-by-nc-4.0", "https://creativecommons.org/licenses/by-nc/4.0/"
    ),
    "SCIN Data Use License": License(
        "SCIN Data Use License",
        "other",
        "https://github.com/google-research-datasets/scin/blob/main/LICENSE",
        hub_name="scin-data-use-license",
    ),
}


def license_for(name: str) -> License:
    """The licence called ``name``; an unknown one is an error, never a guess."""
    try:
        return LICENSES[name]
    except KeyError:
        raise UnknownLicenseError(
            f"unknown licence {name!r}; known: {', '.join(LICENSES)}"
        ) from None


@dataclass(frozen=True, slots=True)
class SourceInfo:
    name: str
    title: str
    license: str  # a key of LICENSES
    attribution: str
    citation: str
    homepage: str
    layout: str
    reader: str  # module under dermasynth_builder.sources that reads it

    @property
    def license_info(self) -> License:
        return license_for(self.license)


# In data-flow order: the order of configs in a release and of rows in `sources list`.
REGISTRY: dict[str, SourceInfo] = {
    "derm12345": SourceInfo(
        name="derm12345",
        title="DERM12345",
        license="CC BY 4.0",
        attribution="DERM12345, Imperial College London and collaborators (Yilmaz et al., 2024)",
        citation=(
            "Yilmaz A., Yasar S.P., Gencoglan G. et al. DERM12345: A Large, Multisource "
            "Dermatoscopic Skin Lesion Dataset with 40 Subclasses. Sci Data 11, 1302 (2024). "
            "https://doi.org/10.1038/s41597-024-04104-3"
        ),
        homepage="https://api.isic-archive.com/doi/derm12345",
        layout=(
            "derm12345_metadata_train.csv, derm12345_metadata_test.csv (either may be absent); "
            "images <part>/<label>/<image_id>.jpg under derm12345_train_part_1/, "
            "derm12345_train_part_2/, derm12345_test/ (or train/<label>/, or flat)"
        ),
        reader="derm12345",
    ),
    "bcn20000": SourceInfo(
        name="bcn20000",
        title="BCN20000",
        license="CC BY-NC 4.0",
        attribution="BCN20000, Hospital Clínic de Barcelona (Hernández-Pérez et al., 2024)",
        citation=(
            "Hernández-Pérez C. et al. BCN20000: Dermoscopic Lesions in the Wild. Sci Data 11, 641 "
            "(2024). https://doi.org/10.1038/s41597-024-03387-w; Combalia M. et al. "
            "arXiv:1908.02288 (2019)"
        ),
        homepage="https://github.com/imatge-upc/BCN20000",
        layout=(
            "bcn_20k_train.csv and/or bcn_20k_test.csv with BCN_*.jpg (flat or nested as "
            "BCN_20k_train/bcn_20k_train/), or an ISIC export: metadata.csv or "
            "bcn20000_metadata_<date>.csv beside ISIC_*.jpg"
        ),
        reader="bcn20000",
    ),
    "pad_ufes_20": SourceInfo(
        name="pad_ufes_20",
        title="PAD-UFES-20",
        license="CC BY 4.0",
        attribution="PAD-UFES-20, Federal University of Espírito Santo (Pacheco et al., 2020)",
        citation=(
            "Pacheco A.G.C. et al. PAD-UFES-20: a skin lesion dataset composed of patient data and "
            "clinical images collected from smartphones. Data in Brief 32 (2020) 106221; Mendeley "
            "Data https://doi.org/10.17632/zr7vgbcyr2.1"
        ),
        homepage="https://data.mendeley.com/datasets/zr7vgbcyr2/1",
        layout="metadata.csv and images/imgs_part_{1,2,3}/*.png (parts may be nested once more)",
        reader="pad_ufes_20",
    ),
    "scin": SourceInfo(
        name="scin",
        title="SCIN",
        license="SCIN Data Use License",
        attribution=(
            "SCIN (Skin Condition Image Network), Google Research and Stanford Medicine (Ward et "
            "al., 2024); no attempt to re-identify data subjects is permitted"
        ),
        citation=(
            "Ward A., Li J., Wang J. et al. Crowdsourcing Dermatology Images with Google Search "
            "Ads: Creating a Real-World Skin Condition Dataset. arXiv:2402.18545 (2024)"
        ),
        homepage="https://github.com/google-research-datasets/scin",
        layout=(
            "dataset/scin_cases.csv, dataset/scin_labels.csv, dataset/images/*.png (bucket mirror)"
        ),
        reader="scin",
    ),
    "hiba": SourceInfo(
        name="hiba",
        title="HIBA",
        license="CC BY 4.0",
        attribution="Hospital Italiano de Buenos Aires (Ricci Lara et al., 2023)",
        citation=(
            "Ricci Lara M.A., Rodríguez Kowalczuk M.V., Lisa Eliceche M. et al. A dataset of skin "
            "lesion images collected in Argentina for the evaluation of AI tools in this "
            "population. Sci Data 10, 712 (2023). https://doi.org/10.1038/s41597-023-02630-0"
        ),
        homepage=(
            "https://api.isic-archive.com/doi/hospital-italiano-de-buenos-aires-skin-lesions-images"
            "-2019-2022/"
        ),
        layout="ISIC export: metadata.csv beside ISIC_*.jpg (isic-cli or the DOI bundle)",
        reader="hiba",
    ),
}

SOURCE_NAMES: tuple[str, ...] = tuple(REGISTRY)


def unknown_source(name: str) -> str:
    """What to say about a name that is no source: the closest known name, or all of them."""
    import difflib

    close = difflib.get_close_matches(name.lower(), SOURCE_NAMES, n=1, cutoff=0.6)
    if close:
        return f"unknown source {name!r}; did you mean {close[0]}?"
    return f"unknown source {name!r}; known: {', '.join(SOURCE_NAMES)}"


def source_info(name: str) -> SourceInfo:
    """The registry entry of ``name``; a ``KeyError`` lists the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(unknown_source(name)) from None


for _info in REGISTRY.values():  # a typo in the table fails at import, not in a card
    license_for(_info.license)
