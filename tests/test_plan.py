"""Prompting and planning: templates, question banks, recipes, determinism, the plan CLI."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path

import jinja2
import pytest
import yaml
from click.testing import CliRunner

from dermasynth_builder.cli import cli
from dermasynth_builder.paths import sample_root, templates_dir
from dermasynth_builder.plan import build_requests, make_plan, reveals
from dermasynth_builder.prompts import PromptKit, TemplateError, empty_record, present
from dermasynth_builder.records import SourceRecord
from dermasynth_builder.sources import SOURCES, get_source

DISEASE_WORDS = re.compile(
    r"\b(melanoma|carcinoma|nevus|naevus|nevi|keratosis|eczema|psoriasis|cancer|dermatitis|"
    r"lentigo|angioma|dermatofibroma|tinea|urticaria|acne|bowen)\b",
    re.I,
)


@pytest.fixture(scope="module")
def kit() -> PromptKit:
    return PromptKit()


@pytest.fixture(scope="module")
def sample_records() -> list[SourceRecord]:
    return [r for name in SOURCES for r in get_source(name).read(sample_root(name)).records]


def test_banks_have_enough_phrasings_and_no_disease_words(kit):
    for bank, types in kit.banks.items():
        assert len(types) >= (13 if bank == "general" else 4)
        assert any(q.self_instruct for q in types), bank
        for q in types:
            assert len(set(q.phrasings)) >= 10, (bank, q.name)
            for text in q.phrasings:
                assert not DISEASE_WORDS.search(text), (bank, q.name, text)
    general = {q.name for q in kit.banks["general"]}
    assert {
        "overview",
        "dense_caption",
        "visual_features",
        "what_is_it",
        "differential_diagnosis",
        "benign_vs_malignant",
        "patient_explanation",
        "next_steps",
        "anatomical_site",
        "age_sex",
        "fitzpatrick",
        "self_instruct",
    } <= general


def test_every_source_has_requirement_free_types(kit):
    for name in SOURCES:
        free = [q for q in kit.banks[name] if not q.requires]
        assert len(free) >= 2, name


def test_default_recipe_two_requests_per_image_and_eligibility(kit, sample_records):
    for rec in sample_records:
        requests = build_requests(kit, rec, seed=0)
        assert [r.bank for r in requests] == ["general", "source"], rec.image_id
        ctx = rec.context()
        for req in requests:
            qtype = next(
                q
                for q in kit.banks["general" if req.bank == "general" else rec.source]
                if q.name == req.question_type
            )
            assert all(present(ctx[f]) for f in qtype.requires), (
                req.question_type,
                qtype.requires,
            )


def test_metadata_conditioned_types_need_their_fields(kit):
    rec = empty_record("scin")
    seen = Counter()
    for seed in range(200):
        for req in build_requests(kit, rec, seed):
            seen[req.question_type] += 1
    # nothing that requires symptoms, textures, body parts, duration, age, site or Fitzpatrick
    forbidden = {
        "symptoms",
        "textures",
        "body_parts",
        "duration",
        "differential_reasoning",
        "age_group",
        "age_sex",
        "anatomical_site",
        "fitzpatrick",
        "benign_vs_malignant",
    }
    assert not forbidden & set(seen), seen
    assert sum(seen.values()) == 400


def test_no_question_reveals_diagnosis_or_malignancy(kit, sample_records):
    for rec in sample_records:
        for seed in range(30):
            for req in build_requests(kit, rec, seed):
                assert not reveals(req.question, rec), req.question
                if rec.diagnosis:
                    assert rec.diagnosis.lower() not in req.question.lower()


def test_reveals_rule():
    rec = SourceRecord(
        "hiba", "x", "x.jpg", "dermoscopic", "l", "a", diagnosis="melanoma", malignancy="malignant"
    )
    assert reveals("Is this melanoma?", rec)
    assert reveals("Why is this lesion malignant?", rec)
    assert not reveals("Is this lesion benign or malignant?", rec)
    assert not reveals("Describe the border.", rec)


@pytest.mark.parametrize("source", list(SOURCES))
def test_context_renders_with_every_optional_field_null(kit, source):
    text = kit.render_context(empty_record(source))
    assert text and not re.search(r"\bNone\b|\bnan\b|\[\]|  | ,| \.", text), text


def test_sample_contexts_are_clean(kit, sample_records):
    for rec in sample_records:
        text = kit.render_context(rec)
        assert not re.search(r"\bNone\b|\bnan\b|\bUNK\b|\[\]|  | ,| \.", text), text
        if rec.diagnosis:
            assert rec.diagnosis.lower().split(",")[0] in text.lower()


def test_template_syntax_in_metadata_stays_literal(kit, sample_records):
    rec = next(r for r in sample_records if r.source == "pad_ufes_20" and r.anatomic_site)
    evil = replace(rec, anatomic_site="{{ 7*7 }} {% for x in range(3) %}x{% endfor %}")
    evil.extra = dict(rec.extra)
    text = kit.render_context(evil)
    assert "{{ 7*7 }}" in text and "{% for x in range(3) %}" in text and "49" not in text
    for req in build_requests(kit, evil, seed=3):
        assert "49" not in req.question


def test_sandbox_blocks_unsafe_template_code(tmp_path):
    root = tmp_path / "templates"
    shutil.copytree(templates_dir(), root)
    (root / "context" / "hiba.j2").write_text(
        "{{ image_id.__class__.__mro__[1].__subclasses__() }}"
    )
    with pytest.raises(TemplateError, match="hiba.j2"):
        PromptKit(root=root)


def test_template_typo_fails_at_load_naming_the_file(tmp_path):
    root = tmp_path / "templates"
    shutil.copytree(templates_dir(), root)
    path = root / "context" / "scin.j2"
    path.write_text(path.read_text() + "{{ anatomic_stie }}")
    with pytest.raises(TemplateError, match=r"scin\.j2.*anatomic_stie"):
        PromptKit(root=root)


def test_question_placeholder_must_be_required(tmp_path):
    root = tmp_path / "templates"
    shutil.copytree(templates_dir(), root)
    path = root / "questions" / "hiba.yaml"
    data = yaml.safe_load(path.read_text())
    data["types"][0]["phrasings"][0] = "Why at age {{ age }}?"
    data["types"][0]["requires"] = []
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(TemplateError, match="requires"):
        PromptKit(root=root)
    data["types"][0]["phrasings"][0] = "Is it {{ diagnosis }}?"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(TemplateError, match="may only use"):
        PromptKit(root=root)


def test_caption_recipe_adds_exactly_one_caption(sample_records):
    kit = PromptKit("caption")
    for rec in sample_records:
        requests = build_requests(kit, rec, seed=1)
        assert len(requests) == 3
        assert [r.task for r in requests].count("caption") == 1
        assert requests[-1].question_type == "dense_caption"


def test_unknown_recipe_lists_known():
    with pytest.raises(TemplateError, match="caption.*default"):
        PromptKit("nope")


def _plan(tmp_path: Path, name: str, sources, **kw) -> Path:
    run = tmp_path / name
    make_plan(sources, run, **kw)
    return run


def _files(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir())}


def test_plan_is_byte_identical_and_stable_when_images_change(tmp_path, sample_copy):
    pad = sample_copy("pad_ufes_20")
    sources = [("pad_ufes_20", pad), ("hiba", sample_root("hiba"))]
    a = _plan(tmp_path, "a", sources, seed=7)
    b = _plan(tmp_path, "b", [("pad_ufes_20", pad), ("hiba", sample_root("hiba"))], seed=7)
    fa, fb = _files(a), _files(b)
    assert fa.keys() == fb.keys() >= {"run.json", "records.jsonl", "requests.jsonl"}
    for name in fa:
        if name != "run.json":  # run.json names its own folder's sources' absolute roots
            assert fa[name] == fb[name], name
    assert json.loads(fa["run.json"]) == json.loads(fb["run.json"])
    # remove one image from the metadata: every other image keeps exactly its requests
    lines = (pad / "metadata.csv").read_text().splitlines(keepends=True)
    (pad / "metadata.csv").write_text("".join(lines[:3] + lines[4:]))
    c = _plan(tmp_path, "c", sources, seed=7)
    before = {r["id"]: r for r in map(json.loads, fa["requests.jsonl"].splitlines())}
    after = {r["id"]: r for r in map(json.loads, (c / "requests.jsonl").read_bytes().splitlines())}
    removed = set(before) - set(after)
    assert len(removed) == 2 and not set(after) - set(before)
    assert {before[i]["image_id"] for i in removed} == {lines[3].split(",")[24][:-4]}
    # another seed changes choices
    d = _plan(tmp_path, "d", sources, seed=8)
    assert (d / "requests.jsonl").read_bytes() != fa["requests.jsonl"]


def test_limit_is_a_stable_seeded_subset(tmp_path):
    sources = [("derm12345", sample_root("derm12345"))]
    run = _plan(tmp_path, "l5", sources, seed=3, limit=5)
    ids5 = [json.loads(x)["image_id"] for x in (run / "records.jsonl").read_text().splitlines()]
    run = _plan(tmp_path, "l8", sources, seed=3, limit=8)
    ids8 = [json.loads(x)["image_id"] for x in (run / "records.jsonl").read_text().splitlines()]
    assert len(ids5) == 5 and len(ids8) == 8 and set(ids5) < set(ids8)


def test_plan_cli(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["plan", "--sample", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    # 38 images: the 6 official test images of DERM12345 and BCN20000 are left out by default
    assert "planned requests" in result.output and "76 requests" in result.output
    assert "3 official test images left out" in result.output
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["plan"]["requests"] == 76 and run["templates"]["version"]
    assert run["plan"]["sources"]["bcn20000"]["official_test_left_out"] == 3
    assert set(run["templates"]["digests"]) >= {
        "system.j2",
        "context/scin.j2",
        "recipes/default.yaml",
    }
    requests = [
        json.loads(x) for x in (tmp_path / "run" / "requests.jsonl").read_text().splitlines()
    ]
    assert {"id", "source", "image_id", "question_type", "task", "question", "context"} <= set(
        requests[0]
    )
    assert len({r["id"] for r in requests}) == 76
    heldout = (tmp_path / "run" / "heldout.jsonl").read_text().splitlines()
    assert len(heldout) == 6 and all(json.loads(x)["split"] == "test" for x in heldout)
    both = runner.invoke(
        cli, ["plan", "--sample", "--include-official-test", "--out", str(tmp_path / "all")]
    )
    assert both.exit_code == 0 and "88 requests" in both.output, both.output
    assert not (tmp_path / "all" / "heldout.jsonl").read_text().strip()
    bad = runner.invoke(cli, ["plan", "--source", "scin", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "NAME=ROOT" in bad.output
    bad = runner.invoke(cli, ["plan", "--source", f"scin={tmp_path}", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "scin_cases.csv" in bad.output


def test_jinja_is_strict(kit):
    with pytest.raises(jinja2.UndefinedError):
        kit.env.from_string("{{ nope }}").render({})
