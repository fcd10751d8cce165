"""ROUGE-L novelty for model-written questions, without comparing every pair.

Self-instruct keeps a new question only if its ROUGE-L F-measure against every question already
kept is below 0.7. Comparing each new question with all kept ones is quadratic (15k questions,
~10^8 LCS computations). ROUGE-L F = 2*LCS/(|a|+|b|) is at most the Dice overlap of the two
token multisets, so only pairs whose multisets reach that Dice can qualify. A prefix index (the
PPJoin idea: tokens ordered rarest first; two sets reaching the overlap must share a token
within each one's prefix) finds exactly those candidates; a length filter and an exact overlap
count discard most of them, and LCS runs on the rest alone.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable

_TOKEN = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> list[str]:
    """ROUGE's tokenization: lower case, alphanumeric runs (no stemming)."""
    return _TOKEN.findall(text.lower())


def lcs(a: list[str], b: list[str]) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, 1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(a: list[str], b: list[str]) -> float:
    if not a or not b:
        return 0.0
    return 2.0 * lcs(a, b) / (len(a) + len(b))


class NoveltyIndex:
    """Accepts a question unless some accepted question reaches ``threshold`` ROUGE-L F."""

    def __init__(
        self,
        threshold: float,
        corpus: Iterable[list[str]] = (),
        frequency: Counter | None = None,
    ):
        """``frequency`` (from ``count_elements``) may stand for the ``corpus`` it counts, so a
        caller streaming its questions need not keep them."""
        self.threshold = threshold
        self.rank: dict[str, int] = {}
        # rarest tokens first: their postings are short, so probing costs little
        if frequency is None:
            frequency = Counter()
            for toks in corpus:
                self.count_elements(frequency, toks)
        for i, (tok, _) in enumerate(sorted(frequency.items(), key=lambda kv: (kv[1], kv[0]))):
            self.rank[tok] = i
        self.accepted: list[list[str]] = []
        self.bags: list[Counter] = []
        self.postings: dict[str, list[int]] = {}
        self.comparisons = 0  # LCS computations actually run
        self.candidates = 0

    @classmethod
    def count_elements(cls, frequency: Counter, toks: list[str]) -> None:
        """Add one question's elements to a document-frequency count."""
        frequency.update(set(cls._elements(toks)))

    @staticmethod
    def _elements(toks: list[str]) -> list[str]:
        """The multiset as a set: the second "the" becomes "the#2"."""
        seen: Counter = Counter()
        out = []
        for tok in toks:
            seen[tok] += 1
            out.append(tok if seen[tok] == 1 else f"{tok}#{seen[tok]}")
        return out

    def _prefix(self, toks: list[str]) -> list[str]:
        elements = sorted(self._elements(toks), key=lambda e: (self.rank.get(e, -1), e))
        t = self.threshold
        keep = len(elements) - math.ceil(t * len(elements) / (2 - t)) + 1
        return elements[: max(keep, 0)]

    def closest(self, toks: list[str]) -> tuple[float, int | None]:
        """The highest ROUGE-L among candidates reaching the threshold, and which one."""
        if not toks:
            return 0.0, None
        seen: set[int] = set()
        best, which = 0.0, None
        low = self.threshold / (2 - self.threshold) * len(toks)
        high = (2 - self.threshold) / self.threshold * len(toks)
        bag = Counter(toks)
        for element in self._prefix(toks):
            for idx in self.postings.get(element, ()):
                if idx in seen:
                    continue
                seen.add(idx)
                other = self.accepted[idx]
                if not low <= len(other) <= high:  # the length filter
                    continue
                self.candidates += 1
                overlap = sum((bag & self.bags[idx]).values())
                if 2 * overlap < self.threshold * (len(toks) + len(other)):
                    continue  # even the multiset overlap cannot reach the threshold
                self.comparisons += 1
                score = rouge_l(toks, other)
                if score > best:
                    best, which = score, idx
        return best, which

    def add(self, toks: list[str]) -> int:
        idx = len(self.accepted)
        self.accepted.append(toks)
        self.bags.append(Counter(toks))
        for element in self._prefix(toks):
            self.postings.setdefault(element, []).append(idx)
        return idx
