"""Benchmark the agreement scorer against the old LabelChecker on the labelled answers.

Both read the same hand-labelled set (tests/data/agreement_cases.jsonl: model-style answers,
the issue's hard cases included) and print their accuracy for each flag, side by side. The old
checker (any mention agrees, contrast ignored, "premalignant" overrides, merged synonyms, no
hierarchy) is kept here verbatim with its synonym table, as the baseline.

    python bench/agreement.py [--cases tests/data/agreement_cases.jsonl] [--show-errors]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from dermasynth_builder.agreement import load_taxonomy, score_answer  # noqa: E402

FLAGS = ("label_consistent", "malignancy_consistent")
# ---- the old checker (dermasynth_builder/curate/flags.py before issue 13) -------------------
OLD_SYNONYMS: dict[str, list[str]] = {
    "nevus": [
        "naevus",
        "nevi",
        "naevi",
        "mole",
        "melanocytic nevus",
        "melanocytic naevus",
        "benign melanocytic lesion",
    ],
    "compound nevus": ["compound naevus"],
    "junctional nevus": ["junctional naevus"],
    "dermal nevus": ["intradermal nevus", "intradermal naevus"],
    "dysplastic nevus": ["atypical nevus", "atypical naevus", "clark nevus"],
    "blue nevus": ["blue naevus"],
    "melanoma": ["malignant melanoma", "melanoma in situ", "lentigo maligna melanoma"],
    "melanoma metastasis": ["metastatic melanoma"],
    "lentigo maligna": ["melanoma in situ"],
    "basal cell carcinoma": ["bcc", "basal cell cancer", "rodent ulcer", "basalioma"],
    "squamous cell carcinoma": [
        "scc",
        "cutaneous squamous cell carcinoma",
        "squamous cell cancer",
        "bowen's disease",
        "keratoacanthoma",
    ],
    "bowen's disease": ["squamous cell carcinoma in situ", "scc in situ", "bowen disease"],
    "actinic keratosis": ["solar keratosis", "ak", "actinic keratoses", "solar keratoses"],
    "seborrheic keratosis": [
        "seborrhoeic keratosis",
        "seborrheic keratoses",
        "sk",
        "basal cell papilloma",
        "seborrheic wart",
    ],
    "benign keratosis": [
        "seborrheic keratosis",
        "seborrhoeic keratosis",
        "solar lentigo",
        "lichen planus-like keratosis",
        "lichenoid keratosis",
    ],
    "solar lentigo": ["lentigo", "senile lentigo", "age spot", "liver spot", "solar lentigines"],
    "lichen planus-like keratosis": ["lichenoid keratosis", "lplk"],
    "lichenoid keratosis": ["lichen planus-like keratosis", "lplk"],
    "dermatofibroma": ["benign fibrous histiocytoma", "df"],
    "vascular lesion": [
        "hemangioma",
        "haemangioma",
        "angioma",
        "cherry angioma",
        "angiokeratoma",
        "pyogenic granuloma",
        "vascular malformation",
    ],
    "hemangioma": ["haemangioma", "angioma", "cherry angioma"],
    "pyogenic granuloma": ["lobular capillary hemangioma"],
    "spider angioma": ["spider nevus", "nevus araneus"],
    "scar": ["scarring", "cicatrix"],
    "eczema": ["atopic dermatitis", "dermatitis", "eczematous dermatitis"],
    "allergic contact dermatitis": ["contact dermatitis"],
    "psoriasis": ["plaque psoriasis", "psoriatic plaque"],
    "urticaria": ["hives", "wheals"],
    "tinea": ["dermatophytosis", "ringworm", "fungal infection"],
    "insect bite": ["arthropod bite", "bug bite", "insect bites"],
    "folliculitis": [],
    "impetigo": [],
    "acne": ["acne vulgaris"],
    "herpes zoster": ["shingles"],
}
MALIGNANT = re.compile(r"\b(malignan\w*|cancer(ous)?|carcinoma|melanoma)\b", re.I)
BENIGN = re.compile(r"\b(benign|non-?cancerous|harmless)\b", re.I)
NEGATED = re.compile(
    r"\b(?:not|isn't|doesn't|unlikely to be|no (?:signs?|features|evidence) of)(?:\s+\w+){0,2}?"
    r"\s+(malignan\w*|cancer\w*|benign)|\bnon-?(malignan\w*|cancer\w*)",
    re.I,
)
INDETERMINATE = re.compile(
    r"\b(pre-?malignan\w*|pre-?cancer\w*|indeterminate|premalignant)\b", re.I
)


class LabelChecker:
    """Names of diagnoses, with synonyms, matched as whole words."""

    def __init__(self, synonyms: dict[str, list[str]], extra_names: list[str]):
        self.synonyms = synonyms
        vocabulary = set(synonyms) | {s for group in synonyms.values() for s in group}
        vocabulary |= {n.lower() for n in extra_names if n}
        # longest first, so "basal cell carcinoma" wins over "carcinoma"
        self.vocabulary = sorted(vocabulary, key=len, reverse=True)
        self._cache: dict[str, re.Pattern] = {}

    def names_for(self, diagnosis: str) -> set[str]:
        low = diagnosis.lower().strip()
        names = {low, low.split(",")[0].strip()}
        for key, group in self.synonyms.items():
            if low == key or low in group:
                names |= {key, *group}
        return {n for n in names if n}

    def _pattern(self, name: str) -> re.Pattern:
        if name not in self._cache:
            self._cache[name] = re.compile(rf"(?<![a-z]){re.escape(name)}(?![a-z])", re.I)
        return self._cache[name]

    def mentioned(self, text: str) -> set[str]:
        found: set[str] = set()
        low = text.lower()
        for name in self.vocabulary:
            # skip a name inside a longer one already found ("carcinoma" in "basal cell carcinoma")
            if (
                name in low
                and self._pattern(name).search(low)
                and not any(name in longer for longer in found)
            ):
                found.add(name)
        return found

    def consistent(self, diagnosis: str | None, answer: str) -> bool | None:
        """True: names the record's diagnosis (or a synonym); False: names only others;
        None: names no diagnosis, or the record has none."""
        if not diagnosis:
            return None
        mine = self.names_for(diagnosis)
        found = self.mentioned(answer)
        if any(self._pattern(n).search(answer) for n in mine):
            return True
        return False if found else None


def stance(answer: str) -> str | None:
    """The answer's benign/malignant call, if it makes one."""
    if INDETERMINATE.search(answer):
        return "indeterminate"
    text = NEGATED.sub(
        lambda m: "malignant" if (m.group(1) or "").lower() == "benign" else "benign", answer
    )
    malignant = [m.start() for m in MALIGNANT.finditer(text)]
    benign = [m.start() for m in BENIGN.finditer(text)]
    if not malignant and not benign:
        return None
    if len(malignant) != len(benign):
        return "malignant" if len(malignant) > len(benign) else "benign"
    return "malignant" if malignant[0] < benign[0] else "benign"


def malignancy_consistent(malignancy: str | None, answer: str) -> bool | None:
    if not malignancy:
        return None
    call = stance(answer)
    return None if call is None else call == malignancy


def old_score(answer: str, diagnosis: str | None, malignancy: str | None) -> dict:
    names = {str(k).lower(): [str(v).lower() for v in vs] for k, vs in OLD_SYNONYMS.items()}
    checker = LabelChecker(names, [diagnosis] if diagnosis else [])
    return {
        "label_consistent": checker.consistent(diagnosis, answer),
        "malignancy_consistent": malignancy_consistent(malignancy, answer),
    }


# ---- the benchmark ------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=Path, default=ROOT / "tests/data/agreement_cases.jsonl")
    parser.add_argument("--show-errors", action="store_true")
    args = parser.parse_args()
    cases = [json.loads(line) for line in args.cases.read_text(encoding="utf-8").splitlines()]
    load_taxonomy()
    results = {}
    for name, scorer in (
        ("old LabelChecker", lambda c: old_score(c["answer"], c["diagnosis"], c["malignancy"])),
        (
            "score_answer",
            lambda c: score_answer(
                c["answer"], diagnosis=c["diagnosis"], malignancy=c["malignancy"]
            ),
        ),
    ):
        started = time.perf_counter()
        got = [scorer(c) for c in cases]
        elapsed = time.perf_counter() - started
        right = {f: sum(g[f] == c[f] for g, c in zip(got, cases, strict=True)) for f in FLAGS}
        results[name] = (right, elapsed)
        if args.show_errors:
            for g, c in zip(got, cases, strict=True):
                for f in FLAGS:
                    if g[f] != c[f]:
                        print(f"  [{name}] {f}: want {c[f]}, got {g[f]}: {c['answer'][:90]}")
    n = len(cases)
    print(f"{n} labelled answers ({args.cases.name}); accuracy per flag (target >= 0.95):")
    print(
        f"{'scorer':<18} {'label_consistent':>17} {'malignancy_consistent':>22} {'us/answer':>10}"
    )
    for name, (right, elapsed) in results.items():
        print(
            f"{name:<18} {right[FLAGS[0]] / n:>17.3f} {right[FLAGS[1]] / n:>22.3f} "
            f"{elapsed / n * 1e6:>10.0f}"
        )
    (old, _), (new, _) = results.values()
    print(
        "score_answer gets "
        + ", ".join(f"{f} {new[f] - old[f]:+d} answers right" for f in FLAGS)
        + " vs the old checker"
    )


if __name__ == "__main__":
    main()
