"""The curation report: report.json, report.md and PNG figures, made to be reused in the card."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..run import write_json_atomic
from . import subgroups as sg
from .novelty import tokens

FIGURES = "figures"


@dataclass(slots=True)
class ReportStats:
    by_type: Counter = field(default_factory=Counter)  # (source, question_type) -> accepted
    by_task: Counter = field(default_factory=Counter)
    # answer length (words) -> pairs, per task: a histogram, so memory does not grow with pairs
    lengths: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    leading: Counter = field(default_factory=Counter)
    leading_self: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)  # filter -> n
    rejected_by_source: Counter = field(default_factory=Counter)  # (source, filter) -> n
    label: dict[tuple[str, str], Counter] = field(default_factory=lambda: defaultdict(Counter))
    malignancy: dict[tuple[str, str], Counter] = field(default_factory=lambda: defaultdict(Counter))
    subgroups: sg.SubgroupStats = field(default_factory=sg.SubgroupStats)

    def accept(
        self, pair: dict[str, Any], flagged: tuple[str, ...] = (), record: Any = None
    ) -> None:
        """Count an accepted pair; ``flagged`` names the flags that apply to its question type;
        ``record`` (its image's) gives subgroups the pair does not carry (Monk tone, SCIN age)."""
        key = (pair["source"], pair["question_type"])
        self.by_type[key] += 1
        self.by_task[pair["task"]] += 1
        self.lengths[pair["task"]][len(pair["answer"].split())] += 1
        self.subgroups.accept(pair, record, flagged)
        lead = " ".join(tokens(pair["question"] or "")[:2])
        self.leading[lead] += 1
        if pair.get("self_instruct"):
            self.leading_self[lead] += 1
        for name, table in (
            ("label_consistent", self.label),
            ("malignancy_consistent", self.malignancy),
        ):
            if name in flagged:
                table[key][_word(pair[name])] += 1

    def reject(self, pair: dict[str, Any], filter_name: str, record: Any = None) -> None:
        self.rejected[filter_name] += 1
        self.rejected_by_source[(pair["source"], filter_name)] += 1
        self.subgroups.reject(pair, record)


def _word(value: bool | None) -> str:
    return {True: "agree", False: "disagree", None: "unstated"}[value]


def _rates(table: dict[tuple[str, str], Counter]) -> list[dict[str, Any]]:
    rows = []
    for (source, qtype), counts in sorted(table.items()):
        n = sum(counts.values())
        stated = counts["agree"] + counts["disagree"]
        rows.append(
            {
                "source": source,
                "question_type": qtype,
                "pairs": n,
                "agree": counts["agree"],
                "disagree": counts["disagree"],
                "unstated": counts["unstated"],
                "agreement": round(counts["agree"] / stated, 4) if stated else None,
                "stated": round(stated / n, 4) if n else None,
            }
        )
    return rows


def build(stats: ReportStats, min_subgroup: int = 30) -> dict[str, Any]:
    per_source: Counter = Counter()
    for (source, _), n in stats.by_type.items():
        per_source[source] += n
    lengths = {task: _summary(v) for task, v in stats.lengths.items()}
    return {
        "accepted": sum(stats.by_type.values()),
        "rejected": sum(stats.rejected.values()),
        "pairs_by_source": dict(sorted(per_source.items())),
        "pairs_by_task": dict(sorted(stats.by_task.items())),
        "pairs_by_source_and_type": [
            {"source": s, "question_type": q, "pairs": n}
            for (s, q), n in sorted(stats.by_type.items())
        ],
        "answer_words": lengths,
        "leading_words": stats.leading.most_common(30),
        "leading_words_self_instruct": stats.leading_self.most_common(30),
        "rejected_by_filter": dict(stats.rejected.most_common()),
        "rejected_by_source": [
            {"source": s, "filter": f, "pairs": n}
            for (s, f), n in sorted(stats.rejected_by_source.items())
        ],
        "label_agreement": _rates(stats.label),
        "malignancy_agreement": _rates(stats.malignancy),
        "subgroups": (block := sg.report_block(stats.subgroups, min_subgroup)),
        # tables the card renders as they are (card.py: report["sections"])
        "sections": sg.sections(block),
    }


def _summary(histogram: Counter) -> dict[str, float]:
    n = sum(histogram.values())
    if not n:
        return {"n": 0}
    ordered = sorted(histogram.items())

    def nth(k: int) -> int:  # the k-th smallest value (0-based)
        seen = 0
        for value, count in ordered:
            seen += count
            if seen > k:
                return value
        return ordered[-1][0]

    return {
        "n": n,
        "min": ordered[0][0],
        "median": nth(n // 2),
        "mean": round(sum(v * c for v, c in ordered) / n, 1),
        "p95": nth(min(n - 1, int(n * 0.95))),
        "max": ordered[-1][0],
    }


def write_report(
    run: Path,
    stats: ReportStats,
    figures: bool = True,
    min_subgroup: int = 30,
    judge: dict[str, Any] | None = None,
) -> dict[str, Any]:
    report = build(stats, min_subgroup)
    if judge:
        judge["rejected"] = stats.rejected.get("judge", 0)
        report["judge"] = judge
        report["sections"].append(judge_section(judge))
    report["figures"] = _figures(run / FIGURES, stats, report["subgroups"]) if figures else []
    write_json_atomic(run / "report.json", report)
    (run / "report.md").write_text(markdown(report), encoding="utf-8")
    return report


def judge_section(judge: dict[str, Any]) -> dict[str, Any]:
    """The judge pass as a card section (card.py renders report["sections"] as they are)."""
    rows = [[problem, f"{n:,}"] for problem, n in judge["flagged"].items()]
    reject = ", ".join(judge["reject"]) or "none (verdicts kept as columns only)"
    return {
        "title": "Judge pass",
        "text": (
            f"A judge model (`dermasynth judge`) checked {judge['judged']:,} pairs against their "
            "image and record: the label contradicted, case facts the question does not give, "
            f"unsafe advice. Checks that reject: {reject}; {judge['rejected']:,} pairs were "
            "rejected by it. The verdicts are the `judge_label`, `judge_facts` and "
            "`judge_advice` fields of each pair."
        ),
        "columns": ["judge verdict", "pairs flagged"],
        "rows": rows,
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Curation report",
        "",
        f"{report['accepted']:,} pairs accepted, {report['rejected']:,} rejected.",
        "",
        "## Pairs per source",
        "",
        "| source | pairs |",
        "|---|---|",
    ]
    lines += [f"| {s} | {n:,} |" for s, n in report["pairs_by_source"].items()]
    lines += [
        "",
        "## Pairs per source and question type",
        "",
        "| source | question type | pairs |",
        "|---|---|---|",
    ]
    lines += [
        f"| {r['source']} | {r['question_type']} | {r['pairs']:,} |"
        for r in report["pairs_by_source_and_type"]
    ]
    lines += [
        "",
        "## Answer length (words)",
        "",
        "| task | n | median | mean | p95 | max |",
        "|---|---|---|---|---|---|",
    ]
    for task, s in report["answer_words"].items():
        if s.get("n"):
            lines.append(
                f"| {task} | {s['n']:,} | {s['median']} | {s['mean']} | {s['p95']} | {s['max']} |"
            )
    lines += ["", "## Rejections by filter", "", "| filter | pairs |", "|---|---|"]
    lines += [f"| {f} | {n:,} |" for f, n in report["rejected_by_filter"].items()] or [
        "| (none) | 0 |"
    ]
    for title, key in (
        ("Diagnosis agreement", "label_agreement"),
        ("Benign/malignant agreement", "malignancy_agreement"),
    ):
        lines += [
            "",
            f"## {title}",
            "",
            "Agreement is over the answers that name a diagnosis (or make a benign/malignant "
            "call); *stated* is the share of answers that do.",
            "",
            "| source | question type | pairs | agree | disagree | unstated | agreement | stated |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in report[key]:
            agreement = "-" if r["agreement"] is None else f"{r['agreement']:.1%}"
            stated = "-" if r["stated"] is None else f"{r['stated']:.1%}"
            lines.append(
                f"| {r['source']} | {r['question_type']} | {r['pairs']} | {r['agree']} | "
                f"{r['disagree']} | {r['unstated']} | {agreement} | {stated} |"
            )
    lines += [
        "",
        "## Most common leading words of the questions",
        "",
        "| words | questions |",
        "|---|---|",
    ]
    lines += [f"| {w} | {n:,} |" for w, n in report["leading_words"][:20]]
    lines += sg.markdown(report["subgroups"])
    if report.get("judge"):
        section = judge_section(report["judge"])
        lines += ["", f"## {section['title']}", "", section["text"], ""]
        lines += ["| verdict | pairs flagged |", "|---|---|"]
        lines += [f"| {a} | {b} |" for a, b in section["rows"]]
    if report["figures"]:
        lines += ["", "## Figures", ""] + [f"![{Path(f).stem}]({f})" for f in report["figures"]]
    return "\n".join(lines) + "\n"


def _figures(folder: Path, stats: ReportStats, subgroups: dict[str, Any]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    made = []

    def save(fig, name: str) -> None:
        fig.tight_layout()
        fig.savefig(folder / name, dpi=110, metadata={"Software": None})
        plt.close(fig)
        made.append(f"{FIGURES}/{name}")

    sources = sorted({s for s, _ in stats.by_type})
    per_type: Counter = Counter()
    for (_, qtype), n in stats.by_type.items():
        per_type[qtype] += n
    types = [t for t, _ in per_type.most_common()]
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(types) + 1.5))
    left = [0] * len(types)
    for source in sources:
        values = [stats.by_type.get((source, t), 0) for t in types]
        ax.barh(types, values, left=left, label=source)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel("accepted pairs")
    ax.set_title("Pairs per question type and source")
    ax.legend(fontsize=8)
    save(fig, "pairs_by_type.png")

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for task, histogram in sorted(stats.lengths.items()):
        values = sorted(histogram)
        ax.hist(values, bins=40, weights=[histogram[v] for v in values], alpha=0.6, label=task)
    ax.set_xlabel("answer length (words)")
    ax.set_ylabel("pairs")
    ax.set_title("Answer length distribution")
    ax.legend()
    save(fig, "answer_lengths.png")

    top = stats.leading.most_common(20)
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(top) + 1.5))
    ax.barh([w or "(empty)" for w, _ in top], [n for _, n in top])
    ax.invert_yaxis()
    ax.set_xlabel("questions")
    ax.set_title("Most common leading words of the questions")
    save(fig, "leading_words.png")

    fig, ax = plt.subplots(figsize=(6, 3))
    rejected = stats.rejected.most_common()
    ax.bar([f for f, _ in rejected] or ["none"], [n for _, n in rejected] or [0])
    ax.set_ylabel("pairs")
    ax.set_title("Rejections by filter")
    save(fig, "rejections.png")
    name = sg.figure(folder, subgroups)
    if name:
        made.append(f"{FIGURES}/{name}")
    return made


def load_report(run: Path) -> dict[str, Any]:
    return json.loads((run / "report.json").read_text(encoding="utf-8"))
