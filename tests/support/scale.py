"""Build source folders at the DermaSynth paper's scale (~45k images) for the benchmarks.

Rows are cloned from the bundled sample (so every column keeps its real format) with fresh ids;
images are a small pool of drawn lesions written under every name (the header check reads each
file, which is what the benchmarks measure, so distinct pixels would only cost setup time).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from dermasynth_builder.paths import sample_root
from tests.support.synthetic import draw_lesion, encode_jpeg, encode_png

# Images per source at paper scale: 45,612 in all (the paper used ~45k images).
PAPER_SCALE = {
    "derm12345": 12345,
    "bcn20000": 18946,
    "pad_ufes_20": 2298,
    "scin": 10407,
    "hiba": 1616,
}


def _pool(kind: str, size: int, quality: int, n: int = 16) -> list[bytes]:
    modality = "dermoscopic" if kind == "jpg" else "clinical"
    images = [draw_lesion(seed, size, modality) for seed in range(n)]
    return [encode_jpeg(im, quality) if kind == "jpg" else encode_png(im) for im in images]


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]], str]:
    raw = path.read_bytes()
    newline = "\r\n" if b"\r\n" in raw else "\n"
    reader = csv.DictReader(io.StringIO(raw.decode("utf-8"), newline=""))
    return list(reader.fieldnames or []), list(reader), newline


def _write(path: Path, header: list[str], rows: list[dict[str, str]], newline: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, header, lineterminator=newline)
        writer.writeheader()
        writer.writerows(rows)


def _put(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)


def build(
    root: Path, counts: dict[str, int] | None = None, image_size: int = 128, quality: int = 80
) -> dict[str, Path]:
    """Write each source under ``root/<name>`` and return the roots."""
    counts = counts or PAPER_SCALE
    jpgs, pngs = _pool("jpg", image_size, quality), _pool("png", image_size, quality)
    roots = {}
    for name, n in counts.items():
        dest = root / name
        globals()[f"_{name}"](dest, n, jpgs, pngs)
        roots[name] = dest
    return roots


def _derm12345(dest: Path, n: int, jpgs: list[bytes], pngs: list[bytes]) -> None:
    header, rows, nl = _rows(sample_root("derm12345") / "derm12345_metadata_train.csv")
    out = []
    for i in range(n):
        row = dict(rows[i % len(rows)], image_id=f"DERM_{i:06d}", patient_id=f"PID_{i // 4:06d}")
        part = "derm12345_train_part_1" if row["label"] < "isl" else "derm12345_train_part_2"
        _put(dest / part / row["label"] / f"{row['image_id']}.jpg", jpgs[i % len(jpgs)])
        out.append(row)
    _write(dest / "derm12345_metadata_train.csv", header, out, nl)


def _bcn20000(dest: Path, n: int, jpgs: list[bytes], pngs: list[bytes]) -> None:
    header, rows, nl = _rows(sample_root("bcn20000") / "bcn_20k_train.csv")
    out = []
    folder = dest / "BCN_20k_train" / "bcn_20k_train"
    for i in range(n):
        row = dict(
            rows[i % len(rows)], bcn_filename=f"BCN_{i:010d}.jpg", lesion_id=f"BCN_{i // 3:07d}"
        )
        _put(folder / row["bcn_filename"], jpgs[i % len(jpgs)])
        out.append(row)
    _write(dest / "bcn_20k_train.csv", header, out, nl)


def _pad_ufes_20(dest: Path, n: int, jpgs: list[bytes], pngs: list[bytes]) -> None:
    header, rows, nl = _rows(sample_root("pad_ufes_20") / "metadata.csv")
    out = []
    for i in range(n):
        row = dict(
            rows[i % len(rows)],
            patient_id=f"PAT_{i // 2}",
            lesion_id=str(i),
            img_id=f"PAT_{i // 2}_{i}_{i % 997}.png",
        )
        _put(dest / "images" / f"imgs_part_{i % 3 + 1}" / row["img_id"], pngs[i % len(pngs)])
        out.append(row)
    _write(dest / "metadata.csv", header, out, nl)


def _scin(dest: Path, n: int, jpgs: list[bytes], pngs: list[bytes]) -> None:
    cases_header, cases, nl = _rows(sample_root("scin") / "dataset" / "scin_cases.csv")
    labels_header, labels, _ = _rows(sample_root("scin") / "dataset" / "scin_labels.csv")
    by_case = {row["case_id"]: row for row in labels}
    out_cases, out_labels, made, case = [], [], 0, 0
    while made < n:
        template = cases[case % len(cases)]
        case_id = str(-(10**18) - case)
        row = dict(template, case_id=case_id)
        for k in (1, 2, 3):
            if template[f"image_{k}_path"] and made < n:
                rel = f"dataset/images/{10**18 + made}.png"
                row[f"image_{k}_path"] = rel
                _put(dest / rel, pngs[made % len(pngs)])
                made += 1
            else:
                row[f"image_{k}_path"] = ""
        out_cases.append(row)
        out_labels.append(dict(by_case.get(template["case_id"], {}), case_id=case_id))
        case += 1
    _write(dest / "dataset" / "scin_cases.csv", cases_header, out_cases, nl)
    _write(dest / "dataset" / "scin_labels.csv", labels_header, out_labels, nl)


def _hiba(dest: Path, n: int, jpgs: list[bytes], pngs: list[bytes]) -> None:
    header, rows, nl = _rows(sample_root("hiba") / "metadata.csv")
    out = []
    for i in range(n):
        row = dict(
            rows[i % len(rows)],
            isic_id=f"ISIC_{i:07d}",
            lesion_id=f"IL_{i // 2:07d}",
            patient_id=f"IP_{i // 4:07d}",
        )
        _put(dest / f"{row['isic_id']}.jpg", jpgs[i % len(jpgs)])
        out.append(row)
    _write(dest / "metadata.csv", header, out, nl)


def tree_bytes(root: Path) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(root) for f in files)
