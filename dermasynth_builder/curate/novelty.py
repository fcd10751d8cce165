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
from array import array
from collections import Counter
from collections.abc import Iterable

import numpy as np

_TOKEN = re.compile(r"[a-z0-9]+")
WIDTH = 64  # elements kept per question in the overlap matrix (longer ones also as sets)


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
        # each question's elements as ids, one row each (-1 pads), for exact overlaps at once
        self.ids: dict[str, int] = {}
        self.rows = np.full((0, WIDTH), -1, np.int32)
        self.wide: dict[int, frozenset[str]] = {}  # questions of more than WIDTH elements
        self.lengths = array("i")
        # element -> (accepted question, the element's place in that question's order)
        self.postings: dict[str, tuple[array, array]] = {}
        self.comparisons = 0  # LCS computations actually run
        self.candidates = 0

    @classmethod
    def count_elements(cls, frequency: Counter, toks: list[str]) -> None:
        """Add one question's elements to a document-frequency count."""
        frequency.update(set(cls._elements(toks)))

    @staticmethod
    def _elements(toks: list[str]) -> list[str]:
        """The multiset as a set: the second "the" becomes "the#2"."""
        seen: dict[str, int] = {}
        out = []
        for tok in toks:
            n = seen[tok] = seen.get(tok, 0) + 1
            out.append(tok if n == 1 else f"{tok}#{n}")
        return out

    def _ordered(self, toks: list[str]) -> list[str]:
        rank = self.rank
        return sorted(self._elements(toks), key=lambda e: (rank.get(e, -1), e))

    def _prefix_size(self, n: int) -> int:
        t = self.threshold
        return max(n - math.ceil(t * n / (2 - t)) + 1, 0)

    def closest(self, toks: list[str]) -> tuple[float, int | None]:
        """The highest ROUGE-L among candidates reaching the threshold, and which one (the
        earliest accepted of equals)."""
        if not toks:
            return 0.0, None
        n, t = len(toks), self.threshold
        elements = self._ordered(toks)
        hits = [
            (i, self.postings[e])
            for i, e in enumerate(elements[: self._prefix_size(n)])
            if e in self.postings
        ]
        if not hits:
            return 0.0, None
        # every (accepted question, its place, our place) sharing a prefix element, at once
        idx = np.concatenate([np.frombuffer(p[0], np.int32) for _, p in hits])
        pos = np.concatenate([np.frombuffer(p[1], np.int32) for _, p in hits])
        at = np.repeat(np.array([i for i, _ in hits]), [len(p[0]) for _, p in hits])
        size = np.frombuffer(self.lengths, np.int32)[idx]
        fits = (size >= t / (2 - t) * n) & (size <= (2 - t) / t * n)  # the length filter
        idx, pos, at, size = idx[fits], pos[fits], at[fits], size[fits]
        if not len(idx):
            return 0.0, None
        order = np.argsort(idx, kind="stable")  # by question; our places stay ascending
        idx, pos, at, size = idx[order], pos[order], at[order], size[order]
        first = np.flatnonzero(np.concatenate(([True], idx[1:] != idx[:-1])))
        shared = np.diff(np.append(first, len(idx)))  # prefix elements in common
        last = first + shared - 1
        self.candidates += len(first)
        # elements common to both lie in both prefixes up to the last shared one, so beyond it
        # at most the shorter remainder can still match (PPJoin's positional filter)
        bound = shared + np.minimum(n - at[last] - 1, size[first] - pos[last] - 1)
        live = 2 * bound >= t * (n + size[first])
        cand, cand_size = idx[first][live], size[first][live]
        if not len(cand):
            return 0.0, None
        # the exact multiset overlap of every survivor at once: shared element ids per row
        probe = np.array([self.ids.get(e, -2) for e in elements], np.int32)
        overlap = np.isin(self.rows[cand], probe).sum(axis=1)
        wide = cand_size > WIDTH  # rows hold the first WIDTH elements: count those in full
        for k in np.flatnonzero(wide).tolist():
            overlap[k] = len(frozenset(elements) & self.wide[int(cand[k])])
        best, which = 0.0, None
        for y in cand[2 * overlap >= t * (n + cand_size)].tolist():
            self.comparisons += 1
            score = rouge_l(toks, self.accepted[y])
            if score > best:
                best, which = score, y
        return best, which

    def add(self, toks: list[str]) -> int:
        idx = len(self.accepted)
        elements = self._ordered(toks)
        self.accepted.append(toks)
        self.lengths.append(len(toks))
        if idx == len(self.rows):  # room for twice as many rows
            grown = np.full((max(2 * idx, 64), WIDTH), -1, np.int32)
            grown[:idx] = self.rows
            self.rows = grown
        ids = [self.ids.setdefault(e, len(self.ids)) for e in elements[:WIDTH]]
        self.rows[idx, : len(ids)] = ids
        if len(elements) > WIDTH:
            self.wide[idx] = frozenset(elements)
        for j, element in enumerate(elements[: self._prefix_size(len(toks))]):
            places = self.postings.get(element)
            if places is None:
                places = self.postings[element] = (array("i"), array("i"))
            places[0].append(idx)
            places[1].append(j)
        return idx
