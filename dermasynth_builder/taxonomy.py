"""The diagnosis taxonomy the agreement scorer reads: concepts with their parents and
malignancy (``taxonomy.yaml``, a DAG over every source's labels) and the names an answer may use
for them (``synonyms.yaml``)."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .paths import PACKAGE


def norm_text(text: str) -> str:
    """Whitespace and typographic quotes and hyphens made plain, for name matching."""
    return re.sub(r"\s+", " ", text.replace("\u2019", "'").replace("\u2010", "-")).strip()


_TOKEN = re.compile(r"[\w'/]+")  # words; "bowen's" and "spitz/reed" stay whole
_GAP = re.compile(r"[\s-]+")


def _words(name: str) -> tuple[str, ...]:
    return tuple(_TOKEN.findall(name.lower()))


class Taxonomy:
    """Concepts with parents and malignancy (taxonomy.yaml) and their names (synonyms.yaml)."""

    def __init__(self, taxonomy: Path | None = None, synonyms: Path | None = None):
        tree = yaml.safe_load((taxonomy or PACKAGE / "taxonomy.yaml").read_text("utf-8")) or {}
        names = yaml.safe_load((synonyms or PACKAGE / "synonyms.yaml").read_text("utf-8")) or {}
        concepts: dict[str, Any] = tree.get("concepts") or {}
        self.canonical = {str(c).lower(): str(c) for c in concepts}
        self.parents = {
            str(c).lower(): [str(p).lower() for p in (v or {}).get("parents", [])]
            for c, v in concepts.items()
        }
        self.own_malignancy = {
            str(c).lower(): (v or {}).get("malignancy") for c, v in concepts.items()
        }
        self.index: dict[str, str] = {}  # any name -> concept
        aliases: dict[str, str] = {}
        for concept, group in names.items():
            key = str(concept).lower()
            self.parents.setdefault(key, [])
            self.own_malignancy.setdefault(key, None)
            for alias in [str(concept), *(str(a) for a in group or [])]:
                aliases[alias] = key
                self.index[norm_text(alias).lower()] = key
        for key in self.parents:
            self.index.setdefault(key, key)
            aliases.setdefault(key, key)
        for labels in (tree.get("sources") or {}).values():
            for label, concept in (labels or {}).items():
                self.index[norm_text(str(label)).lower()] = str(concept).lower()
        self.no_diagnosis = {norm_text(str(n)).lower() for n in tree.get("no_diagnosis") or []}
        self._ancestors: dict[str, frozenset[str]] = {}
        # names as word tuples: matching is a dictionary lookup per word n-gram, longest first
        self.folded: dict[tuple[str, ...], str] = {}  # case-insensitive names
        self.upper: dict[tuple[str, ...], str] = {}  # abbreviations (BCC, SK): capitals only
        for alias, concept in aliases.items():
            if alias.isupper():
                self.upper[tuple(_TOKEN.findall(alias))] = concept
            else:
                self.folded[_words(alias)] = concept
        self.longest = max(len(k) for k in [*self.folded, *self.upper, ()]) if aliases else 1
        # first word -> the most words a name starting with it has
        self.first: dict[str, int] = {}
        for k in [*self.folded, *((w[0].lower(), *w[1:]) for w in self.upper)]:
            self.first[k[0]] = max(self.first.get(k[0], 0), len(k))

    def ancestors(self, concept: str) -> frozenset[str]:
        if concept not in self._ancestors:
            out: set[str] = set()
            stack = list(self.parents.get(concept, ()))
            while stack:
                parent = stack.pop()
                if parent not in out:
                    out.add(parent)
                    stack.extend(self.parents.get(parent, ()))
            self._ancestors[concept] = frozenset(out)
        return self._ancestors[concept]

    def malignancy(self, concept: str) -> str | None:
        """The concept's own malignancy, else the nearest ancestor's (breadth first)."""
        queue, seen = [concept], set()
        while queue:
            current = queue.pop(0)
            value = self.own_malignancy.get(current)
            if value:
                return str(value)
            seen.add(current)
            queue.extend(p for p in self.parents.get(current, ()) if p not in seen)
        return None

    def resolve(self, name: str) -> str | None:
        """The concept a label names ("Melanoma, NOS", "acral lentiginous melanoma", "NV")."""
        low = norm_text(name).lower()
        for candidate in (low, re.sub(r",\s*nos$", "", low), re.sub(r"^[a-z/]{1,4} - ", "", low)):
            if candidate in self.index:
                return self.index[candidate]
        return None

    def find(self, text: str, extra: tuple[str, ...] = ()) -> list[tuple[str, int, int]]:
        """Names in ``text`` as (concept, start, end): at each word the longest name starting
        there (a plural "s"/"es" allowed), never inside a hyphenated word ("non-melanoma")."""
        words = list(_TOKEN.finditer(text))
        lows = [w.group(0).lower() for w in words]
        adhoc = {_words(name): name for name in extra}
        first = self.first
        if adhoc:
            first = dict(first)
            for k in adhoc:
                first[k[0]] = max(first.get(k[0], 0), len(k))

        def joins(j: int) -> bool:  # may a name run on from word j to word j + 1?
            between = text[words[j].end() : words[j + 1].start()]
            return not between.strip(" -\t\n") or (lows[j + 1] == "nos" and between.strip() == ",")

        out: list[tuple[str, int, int]] = []
        count, after = len(words), 0  # after: the first word not inside a name already found
        # only words that can start a name (a plural "s"/"es" allowed) are visited
        starts = [
            i
            for i, low in enumerate(lows)
            if low in first or low[:-1] in first or low[:-2] in first
        ]
        for i in starts:
            if i < after:
                continue
            low = lows[i]
            longest = max(first.get(low, 0), first.get(low[:-1], 0), first.get(low[:-2], 0))
            start = words[i].start()
            if start > 1 and text[start - 1] == "-" and text[start - 2].isalnum():
                continue  # inside a hyphenated word: "melanoma" in "non-melanoma"
            reach = 1
            while reach < min(longest, count - i) and joins(i + reach - 1):
                reach += 1
            for n in range(reach, 0, -1):
                found = self._lookup(words[i : i + n], lows[i : i + n], adhoc)
                if found is not None:
                    out.append((found, start, words[i + n - 1].end()))
                    after = i + n
                    break
        return out

    def _lookup(
        self, words: list[re.Match[str]], lows: list[str], adhoc: dict[tuple[str, ...], str]
    ) -> str | None:
        head, last = tuple(lows[:-1]), lows[-1]
        exact = tuple(w.group(0) for w in words)
        for tail in (last, last[:-1] if last.endswith("s") else None, last[:-2]):
            if not tail:
                continue
            key = (*head, tail)
            for table in (adhoc, self.folded):
                if key in table:
                    return table[key]
            upper = (*exact[:-1], exact[-1][: len(tail)]) if tail != last else exact
            if upper in self.upper:
                return self.upper[upper]
        return None


@lru_cache(maxsize=8)
def load_taxonomy(taxonomy: Path | None = None, synonyms: Path | None = None) -> Taxonomy:
    return Taxonomy(taxonomy, synonyms)
