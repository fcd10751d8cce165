"""PAD-UFES-20 sample: metadata.csv + images/imgs_part_{1,2,3}/, part 1 nested once more."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PIL import Image

from .writers import LF, split_header, write_csv, write_png


def _to_rgba(img: Image.Image) -> Image.Image:
    """Real PAD-UFES-20 ships some RGBA PNGs (opaque alpha); mimic that."""
    return img.convert("RGBA")


def _crop_190x191(img: Image.Image) -> Image.Image:
    """Real PAD-UFES-20 crops are square-ish but not always square (e.g. 568x569)."""
    return img.crop((0, 0, 190, 191))


PAD_HEADER = split_header(
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
