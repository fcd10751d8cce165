"""Filters: small named units that keep a pair or reject it with a reason.

Each filter sees one candidate pair (a response joined with its record) and returns ``None`` to
keep it or a reason to reject it, written "category: detail" so that reasons group. Stateful
filters (novelty, duplicates) remember what they kept; pairs arrive in plan order, so the
outcome is deterministic.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from .config import CurateConfig
from .grounding import grounding_reason
from .novelty import NoveltyIndex, tokens
from .reveals import diagnosis_patterns, load_names, question_names, record_diagnosis

Pair = dict[str, Any]
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


class _Union:
    """Whether any of ``patterns`` (searched case-insensitively) can match: one search of their
    union, without re.I on the lower-cased text when the patterns are lower case (faster)."""

    def __init__(self, patterns: list[str]):
        body = "|".join(f"(?:{p})" for p in patterns) or "(?!)"
        self.lower = not re.search("[A-Z]", re.sub(r"\\.", "", body))
        self.pattern = re.compile(body, 0 if self.lower else re.I)

    def __call__(self, text: str) -> bool:
        return self.pattern.search(text.lower() if self.lower else text) is not None


def words(text: str | None) -> int:
    return len((text or "").split())


class Filter:
    name: ClassVar[str]

    def __init__(self, config: CurateConfig):
        self.config = config

    def check(self, pair: Pair) -> str | None:
        raise NotImplementedError


class SchemaFilter(Filter):
    """An answer (and, for self-instruct, a question) must be present text."""

    name = "schema"

    def check(self, pair: Pair) -> str | None:
        if not isinstance(pair.get("answer"), str) or not pair["answer"].strip():
            return "empty answer: no text"
        if pair.get("self_instruct") and not str(pair.get("question") or "").strip():
            return "missing question: self-instruct response without its question"
        return None


class LengthFilter(Filter):
    """Answers within word bounds (captions longer); model-written questions too."""

    name = "length"

    def check(self, pair: Pair) -> str | None:
        c = self.config
        n = words(pair["answer"])
        low = c.min_caption_words if pair.get("task") == "caption" else c.min_answer_words
        if n < low:
            return f"answer too short: {n} words (< {low})"
        if n > c.max_answer_words:
            return f"answer too long: {n} words (> {c.max_answer_words})"
        if pair.get("self_instruct"):
            q = words(pair.get("question"))
            if q < c.min_question_words or q > c.max_question_words:
                bounds = f"{c.min_question_words}-{c.max_question_words}"
                return f"question length: {q} words (outside {bounds})"
        return None


class RefusalFilter(Filter):
    """Refusals and non-answers: "I cannot provide...", or "see a doctor" with nothing else."""

    name = "refusal"

    def __init__(self, config: CurateConfig):
        super().__init__(config)
        self.refusals = [re.compile(p, re.I) for p in config.refusal_patterns]
        self.any_refusal = _Union(config.refusal_patterns)
        self.consult = re.compile(config.consult_pattern, re.I)

    def check(self, pair: Pair) -> str | None:
        answer = pair["answer"]
        for pattern in self.refusals if self.any_refusal(answer) else ():
            match = pattern.search(answer)
            if match:
                return f"refusal: {match.group(0).strip()!r}"
        if self.consult.search(answer):
            rest = [s for s in _SENTENCE.split(answer) if not self.consult.search(s)]
            if words(" ".join(rest)) < self.config.min_substantive_words:
                return "non-answer: only advises seeing a doctor"
        return None


class LeakageFilter(Filter):
    """The answer cites its context ("according to the provided metadata"), which the method
    forbids: the pair must read as if the model saw only the image."""

    name = "leakage"

    def __init__(self, config: CurateConfig):
        super().__init__(config)
        self.patterns = [re.compile(p, re.I) for p in config.leak_patterns]
        self.any_leak = _Union(config.leak_patterns)

    def check(self, pair: Pair) -> str | None:
        text = f"{pair.get('question') if pair.get('self_instruct') else ''} {pair['answer']}"
        for pattern in self.patterns if self.any_leak(text) else ():
            match = pattern.search(text)
            if match:
                return f"cites its context: {match.group(0).strip()!r}"
        return None


class NoveltyFilter(Filter):
    """Self-instruct: a model-written question too close (ROUGE-L >= 0.7) to one already kept
    for the same source is rejected."""

    name = "novelty"

    def __init__(
        self,
        config: CurateConfig,
        corpus: dict[str, list[list[str]]] | None = None,
        frequency: dict[str, Counter] | None = None,
    ):
        """``corpus``: every model-written question per source (tokens), or ``frequency``:
        their element counts (``NoveltyIndex.count_elements``), which curation streams."""
        super().__init__(config)
        self.indexes: dict[str, NoveltyIndex] = {
            source: NoveltyIndex(config.novelty_rouge_l, toks)
            for source, toks in (corpus or {}).items()
        }
        for source, counts in (frequency or {}).items():
            self.indexes[source] = NoveltyIndex(config.novelty_rouge_l, frequency=counts)
        self.kept: dict[str, list[str]] = {}

    def check(self, pair: Pair) -> str | None:
        if not pair.get("self_instruct"):
            return None
        source = pair["source"]
        index = self.indexes.setdefault(source, NoveltyIndex(self.config.novelty_rouge_l))
        toks = tokens(pair["question"])
        score, which = index.closest(toks)
        if which is not None and score >= self.config.novelty_rouge_l:
            other = self.kept[source][which]
            return f"question not novel: ROUGE-L {score:.2f} with kept {other}"
        return None

    def accept(self, pair: Pair) -> None:
        if pair.get("self_instruct"):
            self.indexes[pair["source"]].add(tokens(pair["question"]))
            self.kept.setdefault(pair["source"], []).append(pair["id"])

    @property
    def comparisons(self) -> int:
        return sum(i.comparisons for i in self.indexes.values())


class DuplicateFilter(Filter):
    """Exact or near-duplicate answers (word-set Jaccard >= 0.9) for the same image."""

    name = "duplicate"

    def __init__(self, config: CurateConfig):
        super().__init__(config)
        self.seen: dict[tuple[str, str], list[tuple[str, str, frozenset[str]]]] = {}
        self._last: tuple[Pair, str, frozenset[str]] | None = None

    @staticmethod
    def normal(answer: str) -> str:
        """An answer's normal form: its words, lower case, single-spaced."""
        return " ".join(tokens(answer))

    def _normal(self, pair: Pair, norm: str | None = None) -> tuple[str, frozenset[str]]:
        """The answer's normal form (``norm``, when a worker made it) and word set, kept from
        ``check`` for ``accept``."""
        if self._last is not None and self._last[0] is pair:
            return self._last[1], self._last[2]
        norm = self.normal(pair["answer"]) if norm is None else norm
        bag = frozenset(norm.split())
        self._last = (pair, norm, bag)
        return norm, bag

    def prime(self, pair: Pair, norm: str) -> None:
        """Take the answer's normal form from a worker instead of making it again."""
        self._normal(pair, norm)

    def check(self, pair: Pair) -> str | None:
        key = (pair["source"], pair["image_id"])
        norm, bag = self._normal(pair)
        limit, size = self.config.near_duplicate_jaccard, len(bag)
        for other_id, other_norm, other_bag in self.seen.get(key, ()):
            if norm == other_norm:
                return f"duplicate answer: same as {other_id}"
            other_size = len(other_bag)
            if min(size, other_size) < limit * max(size, other_size):
                continue  # the sizes alone keep the Jaccard below the limit
            shared = len(bag & other_bag)
            union = size + other_size - shared
            jaccard = shared / union if union else 0.0
            if jaccard >= limit:
                return f"near-duplicate answer: Jaccard {jaccard:.2f} with {other_id}"
        return None

    def accept(self, pair: Pair) -> None:
        norm, bag = self._normal(pair)
        key = (pair["source"], pair["image_id"])
        self.seen.setdefault(key, []).append((pair["id"], norm, bag))

    def forget(self, key: tuple[str, str]) -> None:
        """Drop what was kept for an image whose pairs have all been seen (bounded memory)."""
        self.seen.pop(key, None)


RecordLookup = Callable[[str, str], Any] | Mapping[tuple[str, str], Any] | None


class _RecordFilter(Filter):
    """A filter that reads the pair's source record when curation passes a lookup."""

    def __init__(self, config: CurateConfig, records: RecordLookup = None):
        super().__init__(config)
        self.records = records

    def record(self, pair: Pair) -> Any:
        key = (pair.get("source"), pair.get("image_id"))
        if callable(self.records):
            found = self.records(*key)
        elif self.records is not None:
            found = self.records.get(key)
        else:
            found = None
        return pair if found is None else found


class GroundingFilter(_RecordFilter):
    """Rejects answers that state a non-visible case fact their question does not give
    (model-written questions included)."""

    name = "grounding"

    def check(self, pair: Pair) -> str | None:
        return grounding_reason(pair.get("question"), pair.get("answer"), self.record(pair))


class RevealsDiagnosisFilter(_RecordFilter):
    """Rejects self-instruct pairs whose model-written question names the record's diagnosis
    (or a synonym): the answer would be given away by the question."""

    name = "reveals_diagnosis"

    def __init__(self, config: CurateConfig, records: RecordLookup = None):
        super().__init__(config, records)
        self.synonyms = load_names(config.synonyms)
        self.patterns: dict[tuple[str | None, str | None], list] = {}  # per diagnosis, built once

    def check(self, pair: Pair) -> str | None:
        if not pair.get("self_instruct"):
            return None
        key = record_diagnosis(self.record(pair))
        patterns = self.patterns.get(key)
        if patterns is None:
            patterns = self.patterns[key] = diagnosis_patterns(*key, self.synonyms)
        return question_names(pair.get("question"), patterns)


class JudgeFilter(Filter):
    """Rejects pairs the judge flagged (``dermasynth judge``), for the checks the config names.
    ``annotate`` first puts the verdicts on the pair as ``judge_*`` columns, kept or not."""

    name = "judge"
    PROBLEMS: ClassVar[dict[str, str]] = {
        "label": "contradicts",
        "facts": "invented",
        "advice": "unsafe",
    }

    def __init__(self, config: CurateConfig, judgements: Mapping[str, Any] | None = None):
        super().__init__(config)
        self.judgements = judgements or {}
        self.flagged: Counter = Counter()  # check -> pairs the judge flagged (kept or not)

    def annotate(self, pair: Pair) -> None:
        verdict = self.judgements.get(pair.get("id"))
        if verdict is None:
            return
        for check, problem in self.PROBLEMS.items():
            value = getattr(verdict, check)
            pair[f"judge_{check}"] = value
            self.flagged[check] += value == problem

    def check(self, pair: Pair) -> str | None:
        verdict = self.judgements.get(pair.get("id"))
        if verdict is None:
            return None
        for check in self.config.judge_reject:
            problem = self.PROBLEMS[check]
            if getattr(verdict, check) == problem:
                return f"{check} {problem}: {verdict.reason or 'no reason given'}"
        return None


FILTERS: dict[str, type[Filter]] = {
    f.name: f
    for f in (
        SchemaFilter,
        LengthFilter,
        RefusalFilter,
        LeakageFilter,
        NoveltyFilter,
        DuplicateFilter,
        GroundingFilter,
        RevealsDiagnosisFilter,
        JudgeFilter,
    )
}
