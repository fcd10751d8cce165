"""``eval --compare``: earlier eval folders side by side, one row per source and task."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .folder import EvalError
from .report import EVAL_JSON


def load_report(folder: Path) -> dict[str, Any]:
    path = Path(folder) / EVAL_JSON
    if not path.is_file():
        raise EvalError(f"{folder}: no {EVAL_JSON} (run `dermasynth eval RUN --out {folder}`)")
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def compare_rows(folders: list[Path]) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the comparison: n, chance, then accuracy (macro-F1) per folder."""
    reports = [load_report(f) for f in folders]
    header = ["source", "task", "n", "chance"] + [
        f"{Path(f).name}\n{r.get('model')}" for f, r in zip(folders, reports, strict=True)
    ]
    keys = sorted({(r["source"], r["task"]) for rep in reports for r in rep["results"]})
    rows = []
    for source, task in keys:
        found = [
            next((r for r in rep["results"] if (r["source"], r["task"]) == (source, task)), None)
            for rep in reports
        ]
        first = next(r for r in found if r)
        ns = {r["n"] for r in found if r}
        n = str(first["n"]) if len(ns) == 1 else "/".join(str(r["n"]) if r else "-" for r in found)
        cells = [
            "-" if r is None else f"{100 * r['accuracy']:.1f}% ({r['macro_f1']:.2f})" for r in found
        ]
        rows.append([source, task, n, f"{100 * first['chance']:.1f}%", *cells])
    return header, rows
