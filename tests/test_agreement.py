"""The agreement scorer: negation, contrast, hedges, the taxonomy and the corrected synonyms,
on crafted answers and on the labelled set of model-style answers (tests/data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dermasynth_builder.agreement import load_taxonomy, score_answer
from dermasynth_builder.curate.config import CurateConfig
from dermasynth_builder.curate.flags import LabelChecker, flags_for
from dermasynth_builder.paths import PACKAGE
from dermasynth_builder.sources import bcn20000, derm12345, isic, pad_ufes_20

CASES = Path(__file__).parent / "data" / "agreement_cases.jsonl"
FLAGS = ("label_consistent", "malignancy_consistent")


def label(answer, diagnosis):
    return score_answer(answer, diagnosis=diagnosis)["label_consistent"]


def call(answer, malignancy):
    return score_answer(answer, malignancy=malignancy)["malignancy_consistent"]


def test_the_labelled_set_is_large_and_scored_above_target():
    cases = [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines()]
    assert len(cases) >= 150
    for flag in FLAGS:
        assert {c[flag] for c in cases} == {True, False, None}  # every outcome is exercised
        right = sum(
            score_answer(c["answer"], diagnosis=c["diagnosis"], malignancy=c["malignancy"])[flag]
            == c[flag]
            for c in cases
        )
        assert right / len(cases) >= 0.95, flag


@pytest.mark.parametrize(
    "answer, diagnosis, expected",
    [
        # any mention is not agreement
        ("This is not a nevus; it is a melanoma.", "nevus", False),
        ("This is not a nevus; it is a melanoma.", "melanoma", True),
        ("A melanoma rather than a nevus.", "nevus", False),
        ("Melanoma was ruled out; a compound nevus.", "melanoma", False),
        ("Melanoma is unlikely; this is a nevus.", "melanoma", False),
        ("Instead of a melanoma, this is a hemangioma.", "melanoma", False),
        ("Melanoma should be excluded by biopsy.", "melanoma", None),  # raised, not called
        ("A seborrheic keratosis can mimic melanoma.", "melanoma", False),
        ("Is this a melanoma? No: a regular compound nevus.", "nevus", True),
        ("BCC-like vessels, but overall a dermal nevus.", "basal cell carcinoma", False),
        ("If it grows, a melanoma must be considered.", "melanoma", None),
        ("Not melanoma.", "melanoma", False),  # denying the label disagrees
        ("Not melanoma.", "nevus", None),  # and says nothing about another label
        ("A pink papule with fine vessels.", "basal cell carcinoma", None),
    ],
)
def test_negation_and_contrast(answer, diagnosis, expected):
    assert label(answer, diagnosis) is expected


@pytest.mark.parametrize(
    "answer, malignancy, expected",
    [
        ("A benign nevus; melanoma is unlikely.", "benign", True),
        ("A benign nevus with no premalignant features.", "benign", True),
        ("It does not look malignant.", "benign", True),
        ("No signs of malignancy.", "malignant", False),
        ("This is not benign.", "malignant", True),
        ("I cannot tell whether it is benign or malignant.", "benign", None),
        ("Benign or malignant cannot be decided from the image.", "malignant", None),
        ("An actinic keratosis, a premalignant lesion.", "indeterminate", True),
        ("Worrying for malignancy.", "malignant", True),
        ("Most likely a basal cell carcinoma.", "malignant", True),  # implied by the diagnosis
        ("Most likely a seborrheic keratosis.", "malignant", False),
        ("The lesion is malignant, although some areas look benign.", "malignant", True),
        ("It is harmless, though lesions like this can rarely become malignant.", "benign", True),
        ("A brown macule.", "benign", None),
        ("Likely malignant.", None, None),
    ],
)
def test_malignancy_stance(answer, malignancy, expected):
    assert call(answer, malignancy) is expected


@pytest.mark.parametrize(
    "answer, diagnosis, expected",
    [
        ("This is a melanoma.", "acral lentiginous melanoma", True),  # parent agrees
        ("Acral lentiginous melanoma.", "melanoma", True),  # subtype agrees
        ("A dysplastic nevus.", "compound dysplastic nevus", True),
        ("A compound dysplastic nevus.", "dysplastic nevus", True),
        ("Lentigo maligna melanoma.", "acral lentiginous melanoma", False),  # siblings
        ("A junctional dysplastic nevus.", "compound dysplastic nevus", False),
        ("A compound nevus.", "compound dysplastic nevus", False),  # banal vs dysplastic
        ("Bowen's disease.", "squamous cell carcinoma", True),  # PAD-UFES-20 SCC holds Bowen's
        ("A BCC.", "Malignant adnexal epithelial proliferations - Follicular", True),  # ISIC tree
        ("A nevus.", "Benign melanocytic proliferations", True),
        ("A seborrheic keratosis.", "BKL", True),  # BCN's benign keratosis
        ("A seborrheic keratosis.", "solar lentigo", False),
        ("A lentigo.", "solar lentigo", True),
        ("A lentigo.", "lentigo maligna", False),
        ("Most consistent with dermatitis.", "Eczema", True),
        ("A nevus.", "benign lesion", None),  # ISIC diagnosis_1 only: no diagnosis to agree
        ("Pityriasis lichenoides chronica.", "Pityriasis lichenoides chronica", True),  # unknown
        ("A psoriasis plaque.", "Pityriasis lichenoides chronica", False),
    ],
)
def test_taxonomy(answer, diagnosis, expected):
    assert label(answer, diagnosis) is expected


@pytest.mark.parametrize(
    "answer, diagnosis",
    [
        ("Features of lentigo maligna.", "solar lentigo"),
        ("This is a solar lentigo.", "lentigo maligna"),
        ("Seborrheic dermatitis of the scalp.", "Eczema"),
        ("Contact dermatitis from nickel.", "Eczema"),
        ("Allergic contact dermatitis.", "Eczema"),
        ("A keratoacanthoma.", "Bowen's disease"),
        ("A cherry angioma.", "pyogenic granuloma"),
        ("A spider nevus.", "nevus"),
        ("Pityriasis versicolor.", "Tinea"),
    ],
)
def test_corrected_synonyms_keep_look_alikes_apart(answer, diagnosis):
    assert label(answer, diagnosis) is False


def test_synonym_file_has_no_alias_shared_between_concepts():
    names = yaml.safe_load((PACKAGE / "synonyms.yaml").read_text(encoding="utf-8"))
    owner: dict[str, str] = {}
    for concept, aliases in names.items():
        for alias in [concept, *aliases]:
            key = alias.lower()
            assert owner.setdefault(key, concept) == concept, (alias, concept, owner[key])
    assert "lentigo maligna" not in [a.lower() for a in names["solar lentigo"]]
    assert not {"seborrheic dermatitis", "contact dermatitis"} & set(names["eczema"])
    assert "keratoacanthoma" not in names["Bowen's disease"]


def test_every_source_label_resolves_to_a_concept_of_the_tree():
    tax = load_taxonomy()
    names = [name for name, _ in derm12345.LABELS.values()]
    names += [name for name, _ in bcn20000.CODES.values()]
    names += [name for name, _ in pad_ufes_20.DIAGNOSES.values()]
    names += [v for v in isic._PLAIN.values() if v not in tax.no_diagnosis]
    names += list(derm12345.LABELS) + list(bcn20000.CODES) + list(pad_ufes_20.DIAGNOSES)
    for name in names:
        assert tax.resolve(name) in tax.parents, name
    for concept, parents in tax.parents.items():
        assert set(parents) <= set(tax.parents), concept
        assert concept not in tax.ancestors(concept), concept  # no cycles
    tree = yaml.safe_load((PACKAGE / "taxonomy.yaml").read_text(encoding="utf-8"))
    assert set(tree["sources"]["derm12345"]) == set(derm12345.LABELS)
    subtypes = [c for c, (name, _) in derm12345.LABELS.items() if tax.ancestors(tax.resolve(name))]
    assert len(subtypes) >= 24


def test_every_derm12345_subtype_agrees_with_its_parents_and_not_its_siblings():
    tax = load_taxonomy()
    concepts = {tax.resolve(name) for name, _ in derm12345.LABELS.values()}
    for concept in concepts:
        name = tax.canonical[concept]
        for parent in tax.ancestors(concept):
            assert label(f"This is most likely a {tax.canonical[parent]}.", name), (parent, name)
        for other in concepts - {concept} - tax.ancestors(concept):
            if concept in tax.ancestors(other):
                continue
            assert label(f"This is most likely a {tax.canonical[other]}.", name) is False, (
                other,
                name,
            )


def test_curation_flags_come_from_the_scorer():
    config = CurateConfig()
    checker = LabelChecker()
    pair = {
        "question_type": "what_is_it",
        "diagnosis": "nevus",
        "malignancy": "benign",
        "answer": "This is not a nevus; it is a melanoma.",
    }
    flags, applies = flags_for(pair, checker, config.diagnosis_types, config.malignancy_types)
    assert flags == {"label_consistent": False, "malignancy_consistent": None}
    assert applies == ("label_consistent",)
    pair["question_type"] = "benign_vs_malignant"
    flags, applies = flags_for(pair, checker, config.diagnosis_types, config.malignancy_types)
    assert flags == {"label_consistent": None, "malignancy_consistent": False}
    pair["question_type"] = "visual_features"
    assert flags_for(pair, checker, config.diagnosis_types, config.malignancy_types)[1] == ()


def test_a_custom_synonym_file_is_used(tmp_path):
    custom = tmp_path / "synonyms.yaml"
    custom.write_text("nevus: [beauty mark]\nmelanoma: []\n", encoding="utf-8")
    checker = LabelChecker(custom)
    assert checker.consistent("nevus", "Most likely a beauty mark.") is True
    assert LabelChecker().consistent("nevus", "Most likely a beauty mark.") is None


def test_agreement_number_for_evaluation():
    both = score_answer("Most likely a benign nevus.", diagnosis="nevus", malignancy="malignant")
    assert both == {"label_consistent": True, "malignancy_consistent": False, "agreement": 0.5}
    assert score_answer("A brown macule.", diagnosis="nevus")["agreement"] is None
    from dermasynth_builder.eval.score import open_score

    class Item:
        diagnosis, malignancy = "nevus", "benign"

    verdicts = open_score("Most likely a benign nevus.", Item())
    assert verdicts == {"label_consistent": True, "malignancy_consistent": True}
