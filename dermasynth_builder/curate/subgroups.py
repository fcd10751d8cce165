"""Subgroup statistics: pairs, rejections and agreement by skin type, sex and age, per source.

Counts are kept per (dimension, source, group) cell, so memory depends on the number of groups,
never on the number of pairs. A rate is printed only where its denominator reaches
``min_n``; a smaller subgroup says "too few (n=...)" instead, because a rate over a handful of
pairs reads as a finding and is noise.

The report carries them twice: ``report["subgroups"]`` (rows with raw counts and rates, for
programs) and ``report["sections"]`` (one table per dimension in the card's section shape:
title, text, columns, rows of strings), plus ``figures/subgroups.png``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

DIMENSIONS = {
    "fitzpatrick_skin_type": "Fitzpatrick skin type",
    "monk_skin_tone": "Monk skin tone (SCIN)",
    "sex": "Sex",
    "age_band": "Age band",
}
ALL = "all sources"
UNKNOWN = "unknown"
BANDS = ((0, 17), (18, 29), (30, 39), (40, 49), (50, 59), (60, 69), (70, 79))
# counters of one cell
PAIRS, REJECTED, L_AGREE, L_DISAGREE, L_UNSTATED, M_AGREE, M_DISAGREE, M_UNSTATED = range(8)
_FLAG_SLOT = {"label_consistent": L_AGREE, "malignancy_consistent": M_AGREE}


def age_band(age: Any, age_group: Any = None) -> str:
    """A decade band from an age ("about 45" -> "40-49"), else from SCIN's ``age_group``
    ("18 to 29" -> "18-29", "80 or above" -> "80+")."""
    if isinstance(age, (int, float)) and not isinstance(age, bool) and age >= 0:
        for low, high in BANDS:
            if age <= high:
                return f"{low}-{high}"
        return "80+"
    if isinstance(age_group, str):
        numbers = re.findall(r"\d+", age_group)
        if len(numbers) >= 2:
            return f"{numbers[0]}-{numbers[1]}"
        if numbers:
            return f"{numbers[0]}+"
    return UNKNOWN


def _field(record: Any, name: str) -> Any:
    if record is None:
        return None
    if isinstance(record, dict):
        return record.get(name)
    return getattr(record, name, None)


def groups_of(pair: dict[str, Any], record: Any = None) -> dict[str, str]:
    """The subgroup of each dimension a pair falls in ("unknown" where its record says not)."""
    monk = _field(record, "monk_skin_tone")
    extra = _field(record, "extra") or {}
    return {
        "fitzpatrick_skin_type": str(pair.get("fitzpatrick_skin_type") or UNKNOWN),
        "monk_skin_tone": str(int(monk)) if isinstance(monk, (int, float)) else UNKNOWN,
        "sex": str(pair.get("sex") or UNKNOWN),
        "age_band": age_band(pair.get("age"), extra.get("age_group")),
    }


class SubgroupStats:
    """Counters per (dimension, source, group); ``all sources`` is one more source."""

    def __init__(self) -> None:
        self.cells: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0] * 8)

    def _cells(self, pair: dict[str, Any], record: Any) -> list[list[int]]:
        out = []
        for dimension, group in groups_of(pair, record).items():
            if dimension == "monk_skin_tone" and pair.get("source") != "scin":
                continue  # only SCIN grades Monk tone
            for source in (pair.get("source") or UNKNOWN, ALL):
                out.append(self.cells[(dimension, source, group)])
        return out

    def accept(self, pair: dict[str, Any], record: Any = None, flagged: tuple = ()) -> None:
        for cell in self._cells(pair, record):
            cell[PAIRS] += 1
            for name in flagged:
                value = pair.get(name)
                slot = _FLAG_SLOT[name] + (0 if value is True else 1 if value is False else 2)
                cell[slot] += 1

    def reject(self, pair: dict[str, Any], record: Any = None) -> None:
        for cell in self._cells(pair, record):
            cell[REJECTED] += 1

    def rows(self, min_n: int) -> list[dict[str, Any]]:
        out = []
        for (dimension, source, group), c in sorted(self.cells.items(), key=_order):
            label_n = c[L_AGREE] + c[L_DISAGREE]
            mal_n = c[M_AGREE] + c[M_DISAGREE]
            seen = c[PAIRS] + c[REJECTED]
            out.append(
                {
                    "dimension": dimension,
                    "source": source,
                    "group": group,
                    "pairs": c[PAIRS],
                    "rejected": c[REJECTED],
                    "rejection_rate": _rate(c[REJECTED], seen, min_n),
                    "label_stated": label_n,
                    "label_agreement": _rate(c[L_AGREE], label_n, min_n),
                    "malignancy_stated": mal_n,
                    "malignancy_agreement": _rate(c[M_AGREE], mal_n, min_n),
                }
            )
        return out


def _order(item: tuple[tuple[str, str, str], list[int]]) -> tuple:
    (dimension, source, group), _ = item
    number = re.match(r"\d+", group)
    roman = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6}.get(group)
    rank = roman or (int(number.group(0)) if number else 10**6 if group == UNKNOWN else 10**5)
    return (list(DIMENSIONS).index(dimension), source != ALL, source, rank, group)


def _rate(hits: int, n: int, min_n: int) -> float | None:
    return round(hits / n, 4) if n >= min_n and n else None


def _cell(rate: float | None, n: int) -> str:
    if n == 0:
        return "-"
    return f"too few (n={n})" if rate is None else f"{rate:.1%} (n={n})"


def report_block(stats: SubgroupStats, min_n: int) -> dict[str, Any]:
    """``report["subgroups"]``: every cell's counts and rates (null where too few)."""
    return {"min_n": min_n, "dimensions": DIMENSIONS, "rows": stats.rows(min_n)}


def sections(block: dict[str, Any]) -> list[dict[str, Any]]:
    """One card section per dimension with data: rows of strings, rates or "too few"."""
    min_n = block["min_n"]
    out = []
    for dimension, title in DIMENSIONS.items():
        rows = [r for r in block["rows"] if r["dimension"] == dimension]
        if not rows or all(r["group"] == UNKNOWN for r in rows):
            continue
        out.append(
            {
                "title": f"Subgroups: {title}",
                "text": (
                    "Pairs kept and rejected, and how often answers agree with the label, per "
                    f"subgroup and source. A rate needs at least {min_n} pairs (agreement: "
                    f"{min_n} answers that make the call); smaller subgroups say too few."
                ),
                "columns": [
                    "source",
                    "group",
                    "pairs",
                    "rejected",
                    "rejection rate",
                    "diagnosis agreement",
                    "benign/malignant agreement",
                ],
                "rows": [
                    [
                        r["source"],
                        r["group"],
                        f"{r['pairs']:,}",
                        f"{r['rejected']:,}",
                        _cell(r["rejection_rate"], r["pairs"] + r["rejected"]),
                        _cell(r["label_agreement"], r["label_stated"]),
                        _cell(r["malignancy_agreement"], r["malignancy_stated"]),
                    ]
                    for r in rows
                ],
            }
        )
    return out


def markdown(block: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for section in sections(block):
        lines += ["", f"## {section['title']}", "", section["text"], ""]
        lines.append("| " + " | ".join(section["columns"]) + " |")
        lines.append("|" + "---|" * len(section["columns"]))
        lines += ["| " + " | ".join(row) + " |" for row in section["rows"]]
    return lines


def figure(folder: Path, block: dict[str, Any], name: str = "subgroups.png") -> str | None:
    """Agreement per subgroup over all sources (Monk tone: SCIN), one panel per dimension;
    subgroups too small for a rate are marked, not drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    for dimension, title in DIMENSIONS.items():
        source = "scin" if dimension == "monk_skin_tone" else ALL
        rows = [r for r in block["rows"] if r["dimension"] == dimension and r["source"] == source]
        if rows and not all(r["group"] == UNKNOWN for r in rows):
            panels.append((title, rows))
    if not panels:
        return None
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.4 * len(panels) + 0.6), squeeze=False)
    for ax, (title, rows) in zip(axes[:, 0], panels, strict=True):
        x = range(len(rows))
        for offset, key, label in (
            (-0.2, "label_agreement", "diagnosis"),
            (0.2, "malignancy_agreement", "benign/malignant"),
        ):
            values = [r[key] if r[key] is not None else 0 for r in rows]
            ax.bar([i + offset for i in x], values, width=0.4, label=label)
        for i, r in enumerate(rows):
            if r["label_agreement"] is None and r["malignancy_agreement"] is None:
                ax.text(i, 0.05, "too few", ha="center", fontsize=7, rotation=90)
        ax.set_xticks(list(x))
        ax.set_xticklabels([f"{r['group']}\n{r['pairs']:,}" for r in rows], fontsize=7)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("agreement")
        ax.set_title(f"{title}: agreement with the label (pairs under each group)", fontsize=9)
    axes[0, 0].legend(fontsize=7)
    folder.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(folder / name, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return name
