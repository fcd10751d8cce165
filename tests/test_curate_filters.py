"""Curation filters and flags, one by one, on crafted responses: what each keeps and what it
rejects, with its reason (the whole step on a run: test_curate.py)."""

from __future__ import annotations

import pytest

from dermasynth_builder.curate.config import CurateConfig
from dermasynth_builder.curate.filters import (
    DuplicateFilter,
    LeakageFilter,
    LengthFilter,
    NoveltyFilter,
    RefusalFilter,
    SchemaFilter,
)
from dermasynth_builder.curate.flags import LabelChecker, malignancy_consistent, stance
from dermasynth_builder.curate.novelty import NoveltyIndex, lcs, rouge_l, tokens

GOOD = "The lesion is an oval brown macule with a regular border and a uniform reticular network."


CONFIG = CurateConfig()


def pair(**kw):
    base = {
        "id": "p1",
        "source": "hiba",
        "image_id": "ISIC_1",
        "task": "qa",
        "question_type": "visual_features",
        "self_instruct": False,
        "question": "Describe the border.",
        "answer": GOOD,
    }
    base.update(kw)
    return base


def test_schema_filter():
    f = SchemaFilter(CONFIG)
    assert f.check(pair()) is None
    assert f.check(pair(answer="  ")).startswith("empty answer")
    assert f.check(pair(self_instruct=True, question="")).startswith("missing question")


def test_length_filter():
    f = LengthFilter(CONFIG)
    assert f.check(pair()) is None
    assert f.check(pair(answer="Benign.")).startswith("answer too short")
    assert f.check(pair(answer="word " * 700)).startswith("answer too long")
    assert f.check(pair(task="caption", answer="A brown oval macule.")).startswith(
        "answer too short"
    )
    assert f.check(pair(self_instruct=True, question="Why?")).startswith("question length")


@pytest.mark.parametrize(
    "answer",
    [
        "I cannot provide a diagnosis based on an image.",
        "I'm sorry, but I can't help with medical images.",
        "As an AI, I am not able to examine skin.",
        "Please consult a dermatologist for an accurate assessment.",
        "Unfortunately, I am unable to assess this lesion.",
    ],
)
def test_refusal_filter_rejects(answer):
    reason = RefusalFilter(CONFIG).check(pair(answer=answer))
    assert reason and reason.split(":")[0] in ("refusal", "non-answer")


def test_refusal_filter_keeps_answers_that_also_advise_a_visit():
    answer = GOOD + " Given the irregular border, it is wise to see a dermatologist for dermoscopy."
    assert RefusalFilter(CONFIG).check(pair(answer=answer)) is None


@pytest.mark.parametrize(
    "answer",
    [
        "According to the provided metadata, this is a nevus on the back.",
        "Based on the provided information, the lesion is malignant.",
        "The metadata indicates a melanoma; the image shows an asymmetric lesion.",
        "As noted in the case information, the patient is 60 years old.",
        "The ground truth label is basal cell carcinoma.",
    ],
)
def test_leakage_filter_rejects_answers_citing_their_context(answer):
    assert LeakageFilter(CONFIG).check(pair(answer=answer)).startswith("cites its context")


def test_leakage_filter_keeps_plain_answers_and_checks_self_instruct_questions():
    f = LeakageFilter(CONFIG)
    assert (
        f.check(pair(answer="Given the irregular border, a biopsy is reasonable. " + GOOD)) is None
    )
    leaky = pair(self_instruct=True, question="What does the metadata say about the age?")
    assert f.check(leaky).startswith("cites its context")


def test_rouge_l_matches_the_definition():
    a, b = tokens("the cat sat on the mat"), tokens("the cat lay on a mat")
    assert lcs(a, b) == 4 and rouge_l(a, b) == pytest.approx(2 * 4 / 12)
    assert rouge_l(a, a) == 1.0 and rouge_l(a, []) == 0.0


def test_novelty_index_finds_exactly_the_pairs_a_full_scan_finds():
    import random

    rng = random.Random(4)
    vocab = "what how which lesion border colour pattern why does this image the a of in".split()
    questions = [[rng.choice(vocab) for _ in range(rng.randint(4, 12))] for _ in range(300)]
    index = NoveltyIndex(0.7, questions)
    kept: list[list[str]] = []
    for q in questions:
        best, _ = index.closest(q)
        full = max((rouge_l(q, k) for k in kept), default=0.0)
        assert (best >= 0.7) == (full >= 0.7), (q, best, full)
        if full < 0.7:
            index.add(q)
            kept.append(q)
    assert index.comparisons < len(questions) * len(kept) / 2  # fewer than the full scan


def test_novelty_filter_per_source():
    f = NoveltyFilter(CONFIG)
    q1 = pair(
        id="a",
        self_instruct=True,
        question="What dermoscopic structures are visible at the border?",
    )
    q2 = pair(
        id="b",
        self_instruct=True,
        question="Which dermoscopic structures are visible at the border?",
    )
    q3 = pair(
        id="c", self_instruct=True, question="How should this patient be followed up over time?"
    )
    assert f.check(q1) is None
    f.accept(q1)
    assert f.check(q2).startswith("question not novel")
    assert "with kept a" in f.check(q2)
    assert f.check(q3) is None
    assert f.check({**q2, "source": "scin"}) is None  # another source keeps its own
    assert f.check(pair(id="d")) is None  # not self-instruct: not checked


def test_duplicate_filter_same_image_only():
    f = DuplicateFilter(CONFIG)
    first = pair(id="a")
    f.accept(first)
    assert f.check(pair(id="b", answer=GOOD.upper())).startswith("duplicate answer")
    near = GOOD.replace("uniform", "very uniform")
    assert f.check(pair(id="c", answer=near)).startswith("near-duplicate answer")
    assert f.check(pair(id="d", image_id="ISIC_2")) is None
    assert (
        f.check(pair(id="e", answer="A pink papule with arborizing vessels and a shiny surface."))
        is None
    )


def test_label_consistency_flag():
    checker = LabelChecker()
    assert checker.consistent(
        "basal cell carcinoma", "Features suggest a BCC with arborizing vessels."
    )
    assert checker.consistent("basal cell carcinoma", "This looks like a melanoma.") is False
    assert checker.consistent("basal cell carcinoma", "A pink shiny papule.") is None
    assert checker.consistent("nevus", "A benign mole with a regular network.")
    assert checker.consistent("Eczema", "Likely atopic dermatitis, with lichenification.")
    # a diagnosis named inside a longer name is not a separate mention
    assert checker.consistent("squamous cell carcinoma", "Probably basal cell carcinoma.") is False
    assert checker.consistent(None, "anything") is None


def test_malignancy_flag():
    assert stance("This lesion is most likely benign.") == "benign"
    assert stance("Features are worrying for malignancy; melanoma must be excluded.") == "malignant"
    assert stance("It does not look malignant.") == "benign"
    assert stance("An actinic keratosis is a premalignant lesion.") == "indeterminate"
    assert stance("A brown macule.") is None
    assert malignancy_consistent("malignant", "Likely a malignant tumour.") is True
    assert malignancy_consistent("benign", "Likely a malignant tumour.") is False
    assert malignancy_consistent(None, "Likely malignant.") is None
