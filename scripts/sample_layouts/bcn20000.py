"""BCN20000 sample, figshare 2024 release (nested BCN_20k_<split>/bcn_20k_<split>/)."""

from __future__ import annotations

from pathlib import Path

from .writers import LF, split_header, write_csv, write_jpeg

BCN_HEADER = split_header(
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
