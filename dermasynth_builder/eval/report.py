"""What an eval leaves behind besides its answers: eval.json, eval.md and confusion figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..run import write_json_atomic

EVAL_JSON = "eval.json"
EVAL_MD = "eval.md"
OFF_FORM = (
    "**{n} answers never came in the requested JSON form** and were scored as guesses: serve "
    "the model with a server that enforces `response_format` (vLLM, Ollama), or its ability "
    "is hidden."
)


def confusion_figures(out: Path, confusion: dict[str, dict[str, Any]]) -> list[str]:
    """One PNG per source and task (rows: gold label; columns: the model's choice)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    folder = out / "figures"
    folder.mkdir(exist_ok=True)
    names = []
    for key, data in confusion.items():
        labels, counts = data["labels"], np.array(data["matrix"], dtype=float)
        rows = counts.sum(axis=1, keepdims=True)
        share = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
        side = max(4.0, 0.35 * len(labels) + 2.5)
        fig, ax = plt.subplots(figsize=(side + 1, side))
        image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_xlabel("model's choice")
        ax.set_ylabel("label")
        ax.set_title(f"{key}: share of each label's items")
        if len(labels) <= 12:
            for i in range(len(labels)):
                for j in range(len(labels)):
                    if counts[i, j]:
                        ax.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=7)
        fig.colorbar(image, ax=ax, fraction=0.046)
        fig.tight_layout()
        name = f"confusion-{key.replace('/', '-')}.png"
        fig.savefig(folder / name, dpi=110)
        plt.close(fig)
        names.append(f"figures/{name}")
    return names


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def markdown(report: dict[str, Any]) -> str:
    """A short human summary of eval.json."""
    release = f" (`{report['release']}`)" if report.get("release") else ""
    lines = [
        f"# Eval: {report['model']} ({report['backend']})",
        "",
        f"Benchmark of `{report['run']}`: {report['images']['heldout']} held-out official test "
        f"images and {report['images']['release_test']} images of the release's test "
        f"split{release}; seed {report['options']['seed']}. Prompts carry no label; an answer "
        "naming no option counts as a seeded random guess (see `unparsed`).",
        "",
        "| source | task | n | accuracy | macro-F1 | chance | unparsed | failed |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    if report.get("off_form"):
        lines[3:3] = ["", OFF_FORM.format(n=report["off_form"])]
    for r in report["results"]:
        lines.append(
            f"| {r['source']} | {r['task']} | {r['n']} | {_pct(r['accuracy'])} | "
            f"{r['macro_f1']:.3f} | {_pct(r['chance'])} | {r['unparsed']} | {r['failed']} |"
        )
    for r in report.get("open", []):
        lines.append(
            f"\nOpen question, {r['source']} (n={r['n']}): the answer agrees with the label "
            f"{_pct(r['label_consistent'])}, with benign/malignant "
            f"{_pct(r['malignancy_consistent'])} (the agreement scorer; no call counts as no)."
        )
    if report["subgroups"]:
        lines += [
            "",
            "## Accuracy by subgroup",
            "",
            "| source | task | attribute | group | n | accuracy |",
        ]
        lines.append("| --- | --- | --- | --- | ---: | ---: |")
        for g in report["subgroups"]:
            lines.append(
                f"| {g['source']} | {g['task']} | {g['attribute']} | {g['group']} | {g['n']} | "
                f"{_pct(g['accuracy'])} |"
            )
    if report.get("figures"):
        lines += ["", "## Confusion matrices", ""]
        lines += [f"![{name}]({name})" for name in report["figures"]]
    return "\n".join(lines) + "\n"


def write_report(out: Path, report: dict[str, Any]) -> None:
    report["figures"] = confusion_figures(out, report["confusion"])
    (out / EVAL_MD).write_text(markdown(report), encoding="utf-8")
    write_json_atomic(out / EVAL_JSON, report)
