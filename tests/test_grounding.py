"""Issue 12: grounded, uncontaminated pairs.

On the real metadata in ../shared (stand-in images made here): the default plan asks no
hidden-fact question without stating the fact, no diagnosis question of an unlabelled image, and
plans no official test image; question premises hold. Then a fake model that invents case facts
in a share of its answers: after curate, no kept pair states a fact its question does not give.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from dermasynth_builder.backends import Answer, Backend, Call, CallResult, Usage
from dermasynth_builder.curate import curate
from dermasynth_builder.curate.config import CurateConfig
from dermasynth_builder.curate.filters import FILTERS, GroundingFilter, RevealsDiagnosisFilter
from dermasynth_builder.curate.grounding import grounding_reason
from dermasynth_builder.curate.reveals import names_diagnosis
from dermasynth_builder.engine import Engine
from dermasynth_builder.options import GenerateOptions
from dermasynth_builder.paths import sample_root
from dermasynth_builder.plan import PlanConflictError, make_plan
from dermasynth_builder.prompts import PromptKit
from dermasynth_builder.question_facts import _PAD_SYMPTOMS as PAD_SYMPTOMS
from dermasynth_builder.question_facts import render_facts
from dermasynth_builder.records import SourceRecord

from .conftest import jpeg_bytes, png_bytes, real

# The question types the issue found relying on facts outside the question (bank, type).
HIDDEN_FACT_TYPES = {
    ("pad_ufes_20", "lesion_history"),
    ("pad_ufes_20", "risk_factors"),
    ("pad_ufes_20", "lesion_size"),
    ("scin", "symptoms"),
    ("scin", "textures"),
    ("scin", "body_parts"),
    ("scin", "other_symptoms"),
    ("hiba", "mm_history"),
}


def _placeholders(folder: Path, names: list[str], data: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(data)


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    """Real metadata of four sources (full PAD-UFES-20 and BCN20000 ISIC export, the DERM12345
    and HIBA excerpts) with stand-in images; SCIN's bundled sample (no real SCIN rows exist)."""
    base = tmp_path_factory.mktemp("real")
    pad = base / "pad"
    pad.mkdir()
    shutil.copy(real("pad-ufes-20", "metadata.csv"), pad / "metadata.csv")
    with open(pad / "metadata.csv", newline="") as fh:
        _placeholders(pad / "images", [r["img_id"] for r in csv.DictReader(fh)], png_bytes(8))

    bcn = base / "bcn"
    bcn.mkdir()
    export = real("bcn20000", "bcn20000_metadata_2025-07-22.csv")
    shutil.copy(export, bcn / export.name)
    for name in ("ISIC_2019_Training_Metadata.csv", "ISIC_2019_Test_Metadata.csv"):
        shutil.copy(real("bcn20000", name), bcn / name)
    with open(export, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    # every unlabelled image and every 8th other one get an image; the rest read as missing
    keep = [r["isic_id"] for i, r in enumerate(rows) if not r["diagnosis_1"] or i % 8 == 0]
    _placeholders(bcn, [f"{i}.jpg" for i in keep], jpeg_bytes(8))

    derm = base / "derm"
    derm.mkdir()
    for split in ("train", "test"):
        src = real("derm12345", f"derm12345_metadata_{split}.EXCERPT_from_{split}_loaded.csv")
        shutil.copy(src, derm / f"derm12345_metadata_{split}.csv")
        with open(src, newline="") as fh:
            for row in csv.DictReader(fh):
                folder = derm / f"derm12345_{split}" / row["label"]
                _placeholders(folder, [f"{row['image_id']}.jpg"], jpeg_bytes(8))

    hiba = base / "hiba"
    hiba.mkdir()
    src = real("hiba", "hiba_metadata.EXCERPT_5rows_from_DermaSynth_notebook.csv")
    shutil.copy(src, hiba / "metadata.csv")
    with open(src, newline="") as fh:
        _placeholders(hiba, [f"{r['isic_id']}.jpg" for r in csv.DictReader(fh)], jpeg_bytes(8))
    return {
        "pad_ufes_20": pad,
        "bcn20000": bcn,
        "derm12345": derm,
        "hiba": hiba,
        "scin": sample_root("scin"),
    }


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def default_plan(roots, tmp_path_factory):
    run = tmp_path_factory.mktemp("plan") / "run"
    summary = make_plan(list(roots.items()), run)
    records = {(r["source"], r["image_id"]): r for r in _lines(run / "records.jsonl")}
    return run, summary, records, _lines(run / "requests.jsonl")


def test_hidden_fact_questions_state_their_fact(default_plan):
    kit = PromptKit()
    stating = {(q.bank, q.name): q for bank in kit.banks.values() for q in bank if q.states}
    assert set(stating) >= HIDDEN_FACT_TYPES
    _, _, records, requests = default_plan
    asked = Counter()
    for req in requests:
        qtype = stating.get((req["source"], req["question_type"]))
        if qtype is None:
            continue
        ctx = SourceRecord.from_dict(records[(req["source"], req["image_id"])]).context()
        facts = render_facts(qtype.states, ctx)
        assert facts and req["question"].startswith(facts), req["question"]
        for word in ctx.get("symptoms") or []:
            if qtype.name in ("symptoms", "lesion_history"):
                said = PAD_SYMPTOMS.get(word, word) if req["source"] == "pad_ufes_20" else word
                assert said in req["question"], (word, req["question"])
        asked[req["question_type"]] += 1
    # the real PAD-UFES-20 rows do get these types, now with their facts in the question
    assert asked["lesion_history"] and asked["risk_factors"] and asked["lesion_size"]
    sized = [r for r in requests if r["question_type"] == "lesion_size"]
    assert all(re.search(r"measures [\d.]+( x [\d.]+)? mm\.", r["question"]) for r in sized)


def test_no_diagnosis_questions_for_unlabelled_images(default_plan):
    kit = PromptKit()
    diagnostic = {(q.bank, q.name) for bank in kit.banks.values() for q in bank if q.diagnostic}
    assert {("general", n) for n in ("what_is_it", "differential_diagnosis")} <= diagnostic
    assert {("general", n) for n in ("patient_explanation", "next_steps")} <= diagnostic
    _, summary, records, requests = default_plan
    bad = [
        r
        for r in requests
        if not records[(r["source"], r["image_id"])]["diagnosis"]
        and ((r["source"] if r["bank"] == "source" else "general"), r["question_type"])
        in diagnostic
    ]
    assert bad == []
    assert summary.unlabelled["bcn20000"] == 0  # its unlabelled images are all official test


def test_unlabelled_images_get_descriptive_questions_only(roots, tmp_path):
    # without the ISIC 2019 challenge files the export's split is unknown: its 1,156
    # unlabelled images are planned, with descriptive questions only
    bcn = tmp_path / "bcn"
    shutil.copytree(roots["bcn20000"], bcn)
    for name in ("ISIC_2019_Training_Metadata.csv", "ISIC_2019_Test_Metadata.csv"):
        (bcn / name).unlink()
    summary = make_plan([("bcn20000", bcn)], tmp_path / "run")
    assert summary.unlabelled["bcn20000"] == 1156 and summary.heldout["bcn20000"] == 0
    records = {r["image_id"]: r for r in _lines(tmp_path / "run" / "records.jsonl")}
    types = Counter(
        r["question_type"]
        for r in _lines(tmp_path / "run" / "requests.jsonl")
        if not records[r["image_id"]]["diagnosis"]
    )
    assert sum(types.values()) >= 1156
    assert not set(types) & {
        "what_is_it",
        "differential_diagnosis",
        "patient_explanation",
        "next_steps",
        "self_instruct",
        "benign_vs_malignant",
        "melanocytic_or_not",
    }


def test_no_official_test_image_is_planned(default_plan, roots):
    run, summary, records, requests = default_plan
    assert all(r["split"] != "test" for r in records.values())
    heldout = _lines(run / "heldout.jsonl")
    assert Counter(r["source"] for r in heldout) == {
        "bcn20000": summary.heldout["bcn20000"],
        "derm12345": 4,
    }
    # every planned BCN image is an ISIC 2019 training image; the held-out ones are its test
    assert summary.heldout["bcn20000"] >= 1156
    assert {r["split"] for r in heldout} == {"test"}
    assert not {(r["source"], r["image_id"]) for r in heldout} & set(records)
    assert {r["image_id"] for r in requests} <= {k[1] for k in records}


def test_include_official_test_is_part_of_the_plan(roots, tmp_path):
    sources = [("derm12345", roots["derm12345"])]
    run = tmp_path / "run"
    default = make_plan(sources, run)
    assert default.records["derm12345"] == 32 and default.heldout["derm12345"] == 4
    (run / "responses.jsonl").write_text('{"id": "x"}\n')  # a result of the default plan
    with pytest.raises(PlanConflictError):
        make_plan(sources, run, include_official_test=True)
    both = make_plan(sources, tmp_path / "all", include_official_test=True)
    assert both.records["derm12345"] == 36 and not both.heldout
    info = json.loads((tmp_path / "all" / "run.json").read_text())
    assert info["fingerprint"]["options"] == {"include_official_test": True}
    assert info["plan"]["include_official_test"] is True


def test_premises_hold(default_plan):
    _, _, records, requests = default_plan
    for req in requests:
        rec = records[(req["source"], req["image_id"])]
        if req["question_type"] == "reviewer_disagreement":
            assert len(rec["differential"]) >= 2
        if req["question_type"] == "benign_mimic":
            assert rec["malignancy"] == "benign"
        if req["question_type"] in ("age_sex", "age_related_risk"):
            about = f"about {rec['age']}" in req["question"]
            assert about == rec["age_approximate"], req["question"]
        assert "new lesion" not in req["question"]
    approx = {s for (s, _), r in records.items() if r["age_approximate"]}
    assert approx == {"bcn20000", "hiba", "scin"}


def test_scin_gradability_and_skin_tone_fields(default_plan):
    run, _, records, _ = default_plan
    skipped = [s for s in _lines(run / "skipped.jsonl") if s["source"] == "scin"]
    assert [s["reason"] for s in skipped] == ["graded insufficient quality"]
    scin = [r for (s, _), r in records.items() if s == "scin"]
    assert {r["fitzpatrick_self_reported"] for r in scin} - {None}
    assert {r["fitzpatrick_skin_type"] for r in scin} - {None}
    assert all(r["monk_skin_tone"] is None or 1 <= r["monk_skin_tone"] <= 10 for r in scin)


# ---------------------------------------------------------------------- curation


@pytest.mark.parametrize(
    ("question", "answer", "fact"),
    [
        ("Describe the lesion.", "The patient reports it itches; the plaque is scaly.", "symptoms"),
        ("Describe the lesion.", "In this 52-year-old man, the plaque is scaly.", "age"),
        ("Describe the lesion.", "The lesion measures 7 mm and is symmetric.", "size"),
        (
            "Describe the lesion.",
            "Given a family history of melanoma, follow-up matters.",
            "history",
        ),
        ("Describe the lesion.", "A biopsy showed basal cell carcinoma.", "biopsy"),
        ("Describe the lesion.", "It has been growing for the past three months.", "duration"),
        ("Describe the lesion.", "It was treated with cryotherapy before.", "treatment"),
    ],
)
def test_grounding_reason_rejects_invented_facts(question, answer, fact):
    reason = grounding_reason(question, answer)
    assert reason and reason.startswith(f"ungrounded {fact}"), reason


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("Describe the lesion.", "A symmetric brown macule with a regular pigment network."),
        ("Describe the lesion.", "If it itches, bleeds or grows, it should be reviewed."),
        ("Describe the lesion.", "Lesions larger than 6 mm deserve attention; this one is small."),
        ("Describe the lesion.", "A biopsy would confirm the diagnosis; ask about family history."),
        (
            "The patient reports itching of this lesion. How does it fit?",
            "The reported itching fits the excoriations visible at the edge.",
        ),
        (
            "The patient is about 55 years old and female. What matters?",
            "In a woman in her 50s, sun damage like this is common.",
        ),
        ("The lesion measures 8 x 6 mm. Is that relevant?", "At 8 mm it is above 6 mm."),
    ],
)
def test_grounding_reason_keeps_grounded_answers(question, answer):
    assert grounding_reason(question, answer) is None


def test_record_values_are_checked():
    rec = {"source": "scin", "symptoms": ["itching"], "other_symptoms": ["fatigue"], "age": 67}
    q = "The person reports itching. How does it fit?"
    assert "fatigue" in grounding_reason(
        q, "The itching and fatigue point to a systemic cause.", rec
    )
    assert "age" in grounding_reason("Describe it.", "At 67, such spots are common.", rec)
    assert grounding_reason(q, "The itching fits the scratch marks seen.", rec) is None


def test_self_instruct_question_naming_the_diagnosis_is_rejected():
    config = CurateConfig()
    f = RevealsDiagnosisFilter(config, {("pad_ufes_20", "a"): SourceRecord(
        "pad_ufes_20", "a", "a.png", "clinical", "CC BY 4.0", "x",
        diagnosis="basal cell carcinoma", diagnosis_code="BCC",
    )})  # fmt: skip
    pair = {"source": "pad_ufes_20", "image_id": "a", "self_instruct": True}
    assert "bcc" in f.check({**pair, "question": "Which features here suggest a BCC?"})
    assert "rodent ulcer" in f.check({**pair, "question": "Is this a rodent ulcer?"})
    assert f.check({**pair, "question": "Which feature matters most here?"}) is None
    assert f.check({**pair, "question": "Is it a BCC?", "self_instruct": False}) is None
    assert names_diagnosis("A melanoma?", {"diagnosis": "nevus"}, {}) is None
    assert FILTERS["grounding"] is GroundingFilter
    assert FILTERS["reveals_diagnosis"] is RevealsDiagnosisFilter


INVENTED = ("The patient reports it itches. ", "In this 52-year-old man, ")
BODY = (
    "The lesion is an oval, light brown macule with a regular border, a uniform reticular "
    "pigment network and no blue-white structures; the surrounding skin shows mild sun damage."
)


class InventingBackend(Backend):
    """A model that adds invented case facts to every third answer (and to its own questions)."""

    name = "fake"

    def __init__(self) -> None:
        self.model = "fake-inventing"
        self.n = 0

    async def generate(self, call: Call) -> CallResult:
        answers = []
        for req in call.requests:
            self.n += 1
            prefix = INVENTED[self.n % 2] if self.n % 3 == 0 else ""
            question = f"Which border features matter in this image number {self.n}?"
            answers.append(Answer(prefix + BODY, question if req.self_instruct else None))
        return CallResult(answers, self.model, Usage(300 * len(answers), 50 * len(answers), 0, 0))


@pytest.fixture
def inventing_run(roots, tmp_path) -> Path:
    """Real PAD-UFES-20 and HIBA rows planned and answered by the inventing model."""
    run = tmp_path / "run"
    make_plan(
        [("pad_ufes_20", roots["pad_ufes_20"]), ("hiba", roots["hiba"])], run, limit=120, seed=1
    )
    options = GenerateOptions(backend="offline", retry_base_delay=0.0, retry_max_delay=0.0)
    Engine(run, options, backend=InventingBackend()).run_sync()
    return run


def test_grounding_filter_on_the_inventing_model(inventing_run):
    records = {(r["source"], r["image_id"]): r for r in _lines(inventing_run / "records.jsonl")}
    chain = GroundingFilter(CurateConfig(), records)
    responses = _lines(inventing_run / "responses.jsonl")
    invented = [r for r in responses if r["answer"].startswith(INVENTED)]
    assert len(invented) >= len(responses) // 4
    verdicts = {r["id"]: chain.check(r) for r in responses}
    for r in invented:
        # kept only where the question itself gives that very fact
        given = "itch" in r["question"] if "itches" in r["answer"] else "52" in r["question"]
        assert (verdicts[r["id"]] is None) == given, (r["question"], verdicts[r["id"]])
    assert sum(v is None for v in verdicts.values()) >= len(responses) - len(invented)


def test_curate_drops_invented_case_facts(inventing_run):
    run = inventing_run
    responses = _lines(run / "responses.jsonl")
    invented = [r for r in responses if r["answer"].startswith(INVENTED)]
    curate(run, figures=False)
    kept = _lines(run / "pairs.jsonl")
    assert kept, "curation kept nothing"
    for pair in kept:
        assert grounding_reason(pair["question"], pair["answer"], pair) is None, pair
    rejected = _lines(run / "rejected.jsonl")
    grounded = [r for r in rejected if r["filter"] == "grounding"]
    # an invented fact is kept only where the question itself gives it (e.g. PAD's age_sex)
    assert len(grounded) >= len(invented) - sum(
        1 for r in invented if grounding_reason(r["question"], r["answer"]) is None
    )
