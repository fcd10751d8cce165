"""Score the answers of an eval folder: parse each choice, count, and write eval.json.

An answer is read as the option it names: a bare letter, "(B)", "B.", "answer: B", or the one
option whose text it names. An answer that names no option (or several) is scored as a seeded
random guess among the options, as MMMU does, so a model that never follows the format scores
at chance rather than zero; ``unparsed`` counts how often that happened. So does a question the
engine gave up on because every answer broke the requested JSON form (a ``content`` failure):
the model answered, just not in a form that names an option. Only calls that never got an
answer (transport failures) are left out of ``n`` and counted as ``failed``.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .bench import LETTERS, Item, _rng

SUBGROUPS = ("fitzpatrick", "sex", "age_band")
OPEN_FLAGS = ("label_consistent", "malignancy_consistent")


def parse_choice(answer: str, options: list[str]) -> int | None:
    """The index of the option ``answer`` picks, or None when it names none or several."""
    letters = LETTERS[: len(options)]
    text = re.sub(r"[*_`#]", "", answer).strip()
    bare = text.strip(" .:;,!()[]\"'").upper()
    if len(bare) == 1 and bare in letters:
        return letters.index(bare)
    match = re.match(rf"^\(?([{letters}])(?:[).:]|\s*$)", text)
    if match:
        return letters.index(match[1])
    match = re.search(
        rf"\b(?:answer|option|choice)\s*(?:is|would be|:)?\s*\(?([{letters}])\b(?![-'])", text, re.I
    )
    if match and match[1].upper() in letters and (match[1].isupper() or "(" in match[0]):
        return letters.index(match[1].upper())
    cited = {m for m in re.findall(rf"\(([{letters}])\)", text)}
    if len(cited) == 1:
        return letters.index(cited.pop())
    lower = text.lower()
    named = [
        i
        for i, o in enumerate(options)
        if re.search(rf"(?<![\w-]){re.escape(o.lower())}(?![\w-])", lower)
    ]
    # "melanoma in situ" also names "melanoma": keep only the longest of nested names
    named = [
        i
        for i in named
        if not any(i != j and options[i].lower() in options[j].lower() for j in named)
    ]
    return named[0] if len(named) == 1 else None


@dataclass(slots=True)
class Tally:
    """Counts for one (source, task), or one subgroup of it."""

    n: int = 0
    correct: int = 0
    unparsed: int = 0
    chance: float = 0.0  # sum of 1/k over the items
    gold: list[str] = field(default_factory=list)
    pred: list[str] = field(default_factory=list)

    def add(self, item: Item, picked: int, parsed: bool) -> None:
        self.n += 1
        self.correct += int(picked == item.gold_index)
        self.unparsed += int(not parsed)
        self.chance += 1 / len(item.options)
        self.gold.append(str(item.gold))
        self.pred.append(item.options[picked])

    def summary(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "correct": self.correct,
            "accuracy": round(self.correct / self.n, 4) if self.n else None,
            "macro_f1": round(macro_f1(self.gold, self.pred), 4) if self.n else None,
            "chance": round(self.chance / self.n, 4) if self.n else None,
            "unparsed": self.unparsed,
        }


def macro_f1(gold: list[str], pred: list[str]) -> float:
    """F1 averaged over the classes present in the gold labels or the predictions."""
    classes = sorted(set(gold) | set(pred))
    if not classes:
        return 0.0
    total = 0.0
    for c in classes:
        tp = sum(1 for g, p in zip(gold, pred, strict=True) if g == c and p == c)
        fp = sum(1 for g, p in zip(gold, pred, strict=True) if g != c and p == c)
        fn = sum(1 for g, p in zip(gold, pred, strict=True) if g == c and p != c)
        total += 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return total / len(classes)


def pick(item: Item, answer: str, seed: int) -> tuple[int, bool]:
    """(chosen option, whether the answer named it); a seeded guess when it named none."""
    index = parse_choice(answer, item.options)
    if index is not None:
        return index, True
    return _rng(seed, item.id, "unparsed").randrange(len(item.options)), False


def open_score(answer: str, item: Item) -> dict[str, bool | None] | None:
    """The public agreement scorer's verdicts on an open answer (None if it is not installed):
    ``label_consistent`` and ``malignancy_consistent``, each True, False or None (no call)."""
    try:
        from ..agreement import score_answer  # type: ignore[attr-defined]
    except ImportError:
        return None
    result = score_answer(answer, diagnosis=item.diagnosis, malignancy=item.malignancy)
    return {k: result.get(k) for k in ("label_consistent", "malignancy_consistent")}


def score(rows: Iterable[tuple[Item, str | None, str | None]], seed: int) -> dict[str, Any]:
    """``results`` per (source, task), ``subgroups``, ``confusion`` pairs and ``open`` scores."""
    tallies: dict[tuple[str, str], Tally] = defaultdict(Tally)
    groups: dict[tuple[str, str, str, str], Tally] = defaultdict(Tally)
    failed: Counter[tuple[str, str]] = Counter()
    missing: Counter[tuple[str, str]] = Counter()
    opens: dict[str, list[dict[str, bool | None]]] = defaultdict(list)
    for item, answer, failure in rows:
        key = (item.source, item.task)
        if answer is None and failure == "content" and item.task != "open":
            answer = ""  # it answered, never in the form asked: a seeded guess, as unparsed
        if answer is None:
            (failed if failure else missing)[key] += 1
            continue
        if item.task == "open":
            value = open_score(answer, item)
            if value is not None:
                opens[item.source].append(value)
            continue
        picked, parsed = pick(item, answer, seed)
        tallies[key].add(item, picked, parsed)
        for attribute in SUBGROUPS:
            value = getattr(item, attribute)
            if value is not None:
                groups[(*key, attribute, str(value))].add(item, picked, parsed)
    results = [
        {
            "source": s,
            "task": t,
            **tally.summary(),
            "failed": failed[(s, t)],
            "missing": missing[(s, t)],
        }
        for (s, t), tally in sorted(tallies.items())
    ]
    subgroups = [
        {"source": s, "task": t, "attribute": a, "group": g, **_short(tally.summary())}
        for (s, t, a, g), tally in sorted(groups.items())
    ]
    confusion = {f"{s}/{t}": matrix(tally) for (s, t), tally in sorted(tallies.items())}
    open_results = [
        {
            "source": s,
            "task": "open",
            "n": len(v),
            **{k: round(sum(x[k] is True for x in v) / len(v), 4) for k in OPEN_FLAGS},
        }
        for s, v in sorted(opens.items())
    ]
    return {
        "results": results,
        "subgroups": subgroups,
        "open": open_results,
        "confusion": confusion,
    }


def matrix(tally: Tally) -> dict[str, Any]:
    """Counts of (gold, predicted) labels: rows are the gold labels, columns the predictions."""
    labels = sorted(set(tally.gold) | set(tally.pred))
    where = {label: i for i, label in enumerate(labels)}
    counts = [[0] * len(labels) for _ in labels]
    for g, p in zip(tally.gold, tally.pred, strict=True):
        counts[where[g]][where[p]] += 1
    return {"labels": labels, "matrix": counts}


def _short(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: summary[k] for k in ("n", "correct", "accuracy", "chance")}
