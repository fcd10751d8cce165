"""Does an answer agree with its image's label? The scorer curation and evaluation share.

``score_answer(answer, diagnosis=..., malignancy=...)`` returns two flags, each ``True``,
``False`` or ``None`` (the answer makes no such call, or there is no label):

- ``label_consistent``: the answer's own diagnosis (the one it commits to) is the label, a
  parent of it or a subtype of it (taxonomy.yaml); a sibling or an unrelated diagnosis is
  ``False``, and so is denying the label ("this is not a melanoma").
- ``malignancy_consistent``: the answer's benign / malignant / premalignant call, explicit
  ("benign", "not malignant") or implied by the diagnosis it commits to, matches the label.

Every name the answer uses is found (synonyms.yaml, longest name first) and read in its clause:
negated or contrasted ("not X", "rather than X", "X was ruled out", "X is unlikely", "instead
of X"), only raised ("X should be excluded", "if X", "whether benign or malignant", "unlike X",
"X-like vessels"), listed in a differential, or stated (more strongly after "most likely",
"consistent with"). The answer's call is its most strongly stated name, refined by a stated
subtype of it; a differential list counts only when nothing is stated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .taxonomy import Taxonomy, load_taxonomy, norm_text

MALIGNANCY = ("benign", "malignant", "indeterminate")
NEGATED, RAISED, LISTED, STATED, STRONG = -1, 0, 1, 2, 3

_BOUNDARY = re.compile(
    r"(?<!\be\.g)(?<!\bi\.e)(?<!\bvs)[.!?](?=\s|$)|[;\n()]|\s[-\u2013\u2014]\s"
    r"|\b(?:but|however|whereas|although|though|while|whilst|yet|instead|rather|unlike|"
    r"except|despite|compared|if)\b",
)
_LEAD = re.compile(r"[\s.!?;()\-\u2013\u2014]*")
# a clause opened by one of these ends at its first comma ("Although X is possible, Y.")
_CONCESSIVE = re.compile(
    r"(?:even )?(?:although|though|while|whilst|unlike|despite|compared|instead|if)\b"
)
_NEG_PRE = re.compile(
    r"\b(?:not|no|never|neither|nor|without|absence of|absent|lacks?|lacking|lack of|"
    r"rather than|instead of|other than|as opposed to|argues? against|against|free of|"
    r"negative for|unlikely(?: to be)?|ruled out|has been excluded|"
    r"isn't|aren't|wasn't|doesn't|don't|didn't|can't be|cannot be)\b",
)
# words between a negation and the name that end its reach ("not X, and is most likely Y")
_NEG_BREAK = re.compile(
    r"[:]|,\s*(?:it|this|the|which|but)\b|\band\s+(?:is|it|this|appears|looks|has|shows|"
    r"most|more|probably|likely)\b|\b(?:most likely|consistent with|probably|favou?r)",
)
_RAISED_PRE = re.compile(
    r"\b(?:if|whether|unless|rule out|ruling out|to exclude|exclude|excluding|"
    r"cannot exclude|can't exclude|risk of|risk for|history of|progress(?:ion|es|ing)? "
    r"(?:to|into)|transform\w*(?: to| into)?|develop into|evolve into|turn into|become|"
    r"becoming|precursor (?:of|to)|unlike|compared|in contrast to|distinguish\w*(?: it)? "
    r"from|differentiat\w*(?: it)? from|confused with|mimic\w*|resembl\w*|simulat\w*|"
    r"mistaken for|harbou?rs?|such as|e\.g\.|for example|for instance|including|less likely|"
    r"seen in|found in|occurs? in|associated with|look-?alike|vs\.?|versus|whether it is|or)\b",
)
_LISTED_PRE = re.compile(
    r"\b(?:differentials?(?: diagnos[ie]s)?|ddx|possibilities|alternatives?|also consider|"
    r"considerations?|to consider|could also be|other diagnoses|consider)\b",
)
_STRONG_PRE = re.compile(
    r"\b(?:most likely|most probably|most consistent with|consistent with|in keeping with|"
    r"compatible with|diagnostic of|characteristic of|typical of|classic(?:al)?|"
    r"favou?r(?:s|ed|ing)?|diagnosis (?:is|of|would be)|suggestive of|suggests?|likely|"
    r"probably|represents?|concerning for|suspicious (?:for|of)|worr(?:isome|ying) for|"
    r"points? (?:to|toward)|best (?:fits?|described as)|features of|appearance of|"
    r"this is|it is|looks like|appears to be|is an?|diagnosis:)\b",
)
_EXCLUDE_POST = re.compile(
    r"^[\s,]*(?:\w+\s+){0,2}?(?:should|must|needs? to|has to|have to|cannot|can't|could not|"
    r"to) be (?:excluded|ruled out|considered)|^[\s,]*(?:\w+\s+){0,2}?(?:is|are|would be|"
    r"could be|remains?) (?:a |an |"
    r"also )?(?:possibility|consideration|differential|less likely)|^[\s,]*(?:\w+\s+){0,1}?"
    r"(?:can|may|might|could|would|sometimes|often)?\s*(?:mimic|resemble|look like|simulate|"
    r"present as|appear similar)\w* (?:this|it|these|the lesion|here)\b",
)
# "melanoma-specific structures", "BCC-like vessels": a descriptor, not a diagnosis
_DESCRIPTOR_POST = re.compile(
    r"^-?(?:like|specific|type|associated|related)\b|^\s+(?:features|criteria|structures|"
    r"patterns?|risk|screening)\b",
)
_NEG_POST = re.compile(
    r"^[\s,]*(?:\w+\s+){0,3}?(?:(?:is|was|has been|have been|were|are|seems?|appears?|"
    r"would be|can be|could be)\s+)?(?:very |highly |quite |much |now )?(?:unlikely|"
    r"improbable|ruled out|excluded|not (?:likely|favou?red|supported|suggested|present|seen|"
    r"evident|the diagnosis|consistent)|absent|doubtful)\b",
)
_STANCE = re.compile(
    r"(?<![\w-])(?:(non-?malignant|non-?cancerous|noncancerous)|(benign|harmless|innocuous)|"
    r"(pre-?malignant|pre-?cancerous|potentially malignant)|(malignan(?:t|cy|cies)|cancerous|"
    r"cancers?))(?!\w)",
)
_STANCE_VALUE = ("benign", "benign", "indeterminate", "malignant")
# "benign or malignant", "benign from malignant": a question, not a call
_PAIR = re.compile(
    r"\b(?:benign|malignant)\s+(?:or|vs\.?|versus|from|and)\s+(?:benign|malignant)\b"
)


@dataclass(slots=True, frozen=True)
class Mention:
    """A name (or a benign/malignant word) found in an answer, and how it is said."""

    concept: str
    start: int
    end: int
    weight: int  # NEGATED, RAISED, LISTED, STATED or STRONG


@lru_cache(maxsize=4)
def _lower(text: str) -> str:
    """``text`` in lower case, position for position (the cue patterns are lower case and
    compiled without re.I, which is several times faster; spans stay valid in ``text``)."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


@lru_cache(maxsize=4)
def _clauses(text: str) -> tuple[tuple[int, int], ...]:
    """(start, end) of each clause; cached, as mentions and stances of one answer share it."""
    cuts = {0, len(text)}
    for m in _BOUNDARY.finditer(text):
        cuts.add(m.start())
        if _CONCESSIVE.fullmatch(m.group(0)):
            comma = text.find(",", m.end())
            stop = _BOUNDARY.search(text, m.end())
            if comma != -1 and (stop is None or comma < stop.start()):
                cuts.add(comma)
    ordered = sorted(cuts)
    return tuple(zip(ordered, ordered[1:], strict=False))


def _weigh(
    text: str, start: int, end: int, clause: tuple[int, int], descriptor: bool = True
) -> int:
    """How the name at text[start:end] is said, from the words around it in its clause."""
    before = text[clause[0] : start]
    after = text[end : clause[1]]
    words = before.split()
    near = " ".join(words[-10:])
    if text[clause[1] : clause[1] + 1] == "?":
        return RAISED
    if _CONCESSIVE.match(before, _LEAD.match(before).end()):
        return RAISED
    if _EXCLUDE_POST.search(after):
        return RAISED
    if _NEG_POST.search(after):
        return NEGATED
    if descriptor and _DESCRIPTOR_POST.search(after):
        return RAISED
    negations = list(_NEG_PRE.finditer(near))
    if negations:
        between = near[negations[-1].end() :]
        if len(between.split()) <= 7 and not _NEG_BREAK.search(between):
            return NEGATED
    if _RAISED_PRE.search(" ".join(words[-6:])):
        return RAISED
    if _LISTED_PRE.search(before):
        return LISTED
    if _STRONG_PRE.search(near):
        return STRONG
    return STATED


def mentions(text: str, taxonomy: Taxonomy, extra: tuple[str, ...] = ()) -> list[Mention]:
    """Every diagnosis named in ``text``, with how it is said."""
    hits = taxonomy.find(text, extra)  # in the original case: abbreviations match in capitals
    if not hits:
        return []
    low = _lower(text)
    clauses = _clauses(low)
    out = []
    for concept, start, end in hits:
        clause = next((c for c in clauses if c[0] <= start < c[1]), (0, len(text)))
        out.append(Mention(concept, start, end, _weigh(low, start, end, clause)))
    return out


def stances(text: str) -> list[Mention]:
    """Benign / malignant / premalignant words in ``text`` as mentions of those values (a
    negated "malignant" is a benign call, a negated "benign" a malignant one)."""
    text = _lower(text)
    if _STANCE.search(text) is None:
        return []
    clauses = _clauses(text)
    pairs = [m.span() for m in _PAIR.finditer(text)]
    out = []
    for m in _STANCE.finditer(text):
        value = _STANCE_VALUE[m.lastindex - 1] if m.lastindex else "benign"
        clause = next((c for c in clauses if c[0] <= m.start() < c[1]), (0, len(text)))
        if any(a <= m.start() < b for a, b in pairs):
            weight = RAISED
        else:
            weight = _weigh(text, m.start(), m.end(), clause, descriptor=False)
        if weight == NEGATED:
            if value == "indeterminate":
                continue
            value, weight = ("malignant" if value == "benign" else "benign"), STATED
        out.append(Mention(value, m.start(), m.end(), weight))
    return out


def diagnosis_call(found: list[Mention], taxonomy: Taxonomy) -> Mention | None:
    """The diagnosis the answer commits to: its most strongly stated name (earliest first),
    refined by a stated subtype of it; a differential list only when nothing is stated."""
    stated = [m for m in found if m.weight >= STATED] or [m for m in found if m.weight == LISTED]
    if not stated:
        return None
    top = min(stated, key=lambda m: (-m.weight, m.start))
    for m in sorted(stated, key=lambda m: m.start):
        if top.concept in taxonomy.ancestors(m.concept) and m.weight >= STATED:
            top = m
    return top


def _related(a: str, b: str, taxonomy: Taxonomy) -> bool:
    return a == b or a in taxonomy.ancestors(b) or b in taxonomy.ancestors(a)


def score_answer(
    answer: str | None,
    *,
    diagnosis: str | None = None,
    malignancy: str | None = None,
    taxonomy: Taxonomy | None = None,
) -> dict[str, Any]:
    """``label_consistent`` and ``malignancy_consistent`` of ``answer`` against the label:
    ``diagnosis`` (the readable name in the release's ``diagnosis`` column) and
    ``malignancy`` (benign / malignant / indeterminate). Each is None when the answer makes
    no such call or the label is missing. ``agreement`` is the share of the flags that are not
    None which are True (None when both are None): evaluation's score for an open answer."""
    tax = taxonomy or load_taxonomy()
    text = norm_text(answer or "")
    label = None
    extra: tuple[str, ...] = ()
    if diagnosis and norm_text(diagnosis).lower() not in tax.no_diagnosis:
        label = tax.resolve(diagnosis)
        if label is None:  # a name the taxonomy does not know: match it literally
            label = re.sub(r",\s*nos$", "", norm_text(diagnosis).lower())
            extra = (label,)
    found = mentions(text, tax, extra) if text else []
    call = diagnosis_call(found, tax)
    flags = {
        "label_consistent": _label(found, call, label, tax),
        "malignancy_consistent": _malignancy(text, call, malignancy, tax),
    }
    stated = [v for v in flags.values() if v is not None]
    # one number for evaluation's open questions: the share of the calls made that agree
    return {**flags, "agreement": sum(stated) / len(stated) if stated else None}


def _label(
    found: list[Mention], call: Mention | None, label: str | None, tax: Taxonomy
) -> bool | None:
    if label is None:
        return None
    denied = [m for m in found if m.weight == NEGATED]
    label_denied = any(m.concept == label or m.concept in tax.ancestors(label) for m in denied)
    if call is None:
        return False if label_denied else None
    if call.concept == label or label in tax.ancestors(call.concept):
        return True
    if call.concept in tax.ancestors(label):  # a parent: agrees unless the label is denied
        specific_denied = any(
            m.concept == label or label in tax.ancestors(m.concept) for m in denied
        )
        return not specific_denied
    return False


def answer_stance(text: str, call: Mention | None, tax: Taxonomy) -> str | None:
    """The answer's benign / malignant / indeterminate call, or None."""
    explicit = [m for m in stances(text) if m.weight >= LISTED]
    implied = []
    if call is not None and tax.malignancy(call.concept):
        implied.append(Mention(tax.malignancy(call.concept), call.start, call.end, call.weight))
    # an explicit call ("benign", "not malignant") outranks the one its diagnosis implies
    strong = (
        [m for m in explicit if m.weight >= STATED]
        or implied
        or [m for m in explicit if m.weight == LISTED]
    )
    if not strong:
        return None
    best = max(m.weight for m in strong)
    top = sorted((m for m in strong if m.weight == best), key=lambda m: m.start)
    values = [m.concept for m in top]
    if "indeterminate" in values:
        return "indeterminate"
    benign, malignant = values.count("benign"), values.count("malignant")
    if benign != malignant:
        return "benign" if benign > malignant else "malignant"
    return values[0]


def _malignancy(
    text: str, call: Mention | None, malignancy: str | None, tax: Taxonomy
) -> bool | None:
    if not malignancy or malignancy.lower() not in MALIGNANCY or not text:
        return None
    stance = answer_stance(text, call, tax)
    return None if stance is None else stance == malignancy.lower()
