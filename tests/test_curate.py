"""Curation as a whole step on a run whose model leaks, refuses and repeats itself: the report,
the CLI, subgroup rates, streaming and the grounding precheck (each filter and flag on its own:
test_curate_filters.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dermasynth_builder.card import _report_sections
from dermasynth_builder.cli import cli
from dermasynth_builder.curate import curate
from dermasynth_builder.curate.subgroups import SubgroupStats, age_band, report_block, sections
from dermasynth_builder.paths import sample_root
from dermasynth_builder.plan import make_plan
from dermasynth_builder.run import RunFolderError

GOOD = "The lesion is an oval brown macule with a regular border and a uniform reticular network."


def _craft_run(tmp_path):
    """A sample plan whose 'model' leaks, refuses and repeats its own questions."""
    run = tmp_path / "run"
    make_plan([("hiba", sample_root("hiba")), ("derm12345", sample_root("derm12345"))], run)
    requests = [json.loads(x) for x in (run / "requests.jsonl").read_text().splitlines()]
    rows, expected = [], {"leak": set(), "refuse": set(), "self": {}}
    for i, req in enumerate(requests):
        answer = (
            f"{GOOD} Variant {i} notes a {['pink', 'tan', 'grey'][i % 3]} hue near the edge {i}."
        )
        question = req["question"]
        if i % 7 == 0:
            answer = "According to the provided metadata this is the labelled diagnosis. " + GOOD
            expected["leak"].add(req["id"])
        elif i % 7 == 1:
            answer = "I cannot provide medical diagnoses from images."
            expected["refuse"].add(req["id"])
        if req["self_instruct"]:
            question = "What colours are visible in this lesion and what do they suggest?"
            expected["self"].setdefault(req["source"], []).append(req["id"])
        keep = ("id", "source", "image_id", "question_type", "bank", "task", "self_instruct")
        row = {k: req[k] for k in keep}
        row.update(
            instruction=req["question"],
            question=question,
            answer=answer,
            model="m",
            backend="fake",
            call_id=str(i),
            usage={},
        )
        rows.append(row)
    rows.reverse()  # completion order differs from plan order
    (run / "responses.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run, expected, len(requests)


def test_curate_a_misbehaving_run(tmp_path):
    run, expected, total = _craft_run(tmp_path)
    summary = curate(run)
    pairs = [json.loads(x) for x in (run / "pairs.jsonl").read_text().splitlines()]
    rejected = [json.loads(x) for x in (run / "rejected.jsonl").read_text().splitlines()]
    assert len(pairs) + len(rejected) == total == summary.responses
    kept = {p["id"] for p in pairs}
    assert not kept & expected["leak"] and not kept & expected["refuse"]
    # each source keeps its repeated model-written question once (if it survived other filters)
    for source, ids in expected["self"].items():
        survivors = [i for i in ids if i not in expected["leak"] | expected["refuse"]]
        assert len(kept & set(ids)) == (1 if survivors else 0), source
    for row in rejected:
        assert row["filter"] in {"schema", "length", "refusal", "leakage", "duplicate", "novelty"}
        assert row["reason"] and ":" in row["reason"]
    assert {r["filter"] for r in rejected} >= {"leakage", "refusal"}
    first = pairs[0]
    assert {
        "id",
        "image_id",
        "source",
        "modality",
        "task",
        "question_type",
        "question",
        "answer",
        "diagnosis",
        "malignancy",
        "age",
        "sex",
        "anatomic_site",
        "fitzpatrick_skin_type",
        "license",
        "attribution",
        "model",
        "template_version",
        "label_consistent",
        "malignancy_consistent",
    } <= set(first)
    report = json.loads((run / "report.json").read_text())
    assert report["accepted"] == len(pairs) and report["rejected_by_filter"]["leakage"] > 0
    assert len(report["figures"]) == 5 and all((run / f).is_file() for f in report["figures"])
    assert "figures/subgroups.png" in report["figures"]
    md = (run / "report.md").read_text()
    assert "## Diagnosis agreement" in md and "## Subgroups: Fitzpatrick skin type" in md
    # subgroup rows count every response once per dimension, kept or rejected
    fitz = [r for r in report["subgroups"]["rows"] if r["dimension"] == "fitzpatrick_skin_type"]
    every = [r for r in fitz if r["source"] == "all sources"]
    assert sum(r["pairs"] for r in every) == len(pairs)
    assert sum(r["rejected"] for r in every) == len(rejected)
    # the card renders report["sections"] as they are
    assert [s["title"] for s in _report_sections(report)][0].startswith("Subgroups")
    # rerunning gives the same files
    before = {n: (run / n).read_bytes() for n in ("pairs.jsonl", "rejected.jsonl", "report.json")}
    CliRunner().invoke(cli, ["curate", str(run)], catch_exceptions=False)
    assert before == {n: (run / n).read_bytes() for n in before}


def test_curate_cli_errors(tmp_path):
    result = CliRunner().invoke(cli, ["curate", str(tmp_path)])
    assert result.exit_code == 2 and "run.json" in result.output


def test_age_bands():
    assert age_band(45) == "40-49" and age_band(17) == "0-17" and age_band(85) == "80+"
    assert age_band(None, "18 to 29") == "18-29" and age_band(None, "80 or above") == "80+"
    assert age_band(None, None) == "unknown"


def test_subgroup_rates_only_where_the_subgroup_is_large_enough():
    stats = SubgroupStats()
    for i in range(40):  # type II: 40 kept, 30 of them agree
        p = {"source": "pad_ufes_20", "fitzpatrick_skin_type": "II", "sex": "female", "age": 55}
        p["label_consistent"] = i < 30
        stats.accept(p, None, ("label_consistent",))
    for _ in range(5):  # type VI: 3 kept (agree), 2 rejected
        stats.reject({"source": "pad_ufes_20", "fitzpatrick_skin_type": "VI"})
    for _ in range(3):
        p = {"source": "pad_ufes_20", "fitzpatrick_skin_type": "VI", "label_consistent": True}
        stats.accept(p, None, ("label_consistent",))
    scin = {"source": "scin", "fitzpatrick_skin_type": "IV", "label_consistent": None}
    stats.accept(scin, {"monk_skin_tone": 7, "extra": {"age_group": "30 to 39"}}, ())
    block = report_block(stats, min_n=30)
    rows = {(r["dimension"], r["source"], r["group"]): r for r in block["rows"]}
    two = rows[("fitzpatrick_skin_type", "pad_ufes_20", "II")]
    assert two["pairs"] == 40 and two["label_agreement"] == 0.75 and two["rejection_rate"] == 0
    six = rows[("fitzpatrick_skin_type", "pad_ufes_20", "VI")]
    assert (six["pairs"], six["rejected"]) == (3, 5) and six["label_agreement"] is None
    assert six["rejection_rate"] is None  # 8 pairs seen: too few for a rate
    assert rows[("monk_skin_tone", "scin", "7")]["pairs"] == 1
    assert not any(k[0] == "monk_skin_tone" and k[1] == "pad_ufes_20" for k in rows)
    assert rows[("age_band", "scin", "30-39")]["pairs"] == 1
    assert rows[("age_band", "all sources", "50-59")]["pairs"] == 40
    tables = {s["title"]: s for s in sections(block)}
    fitz = tables["Subgroups: Fitzpatrick skin type"]
    cells = {(r[0], r[1]): r for r in fitz["rows"]}
    assert cells[("pad_ufes_20", "II")][5] == "75.0% (n=40)"
    assert cells[("pad_ufes_20", "VI")][5] == "too few (n=3)"
    assert cells[("pad_ufes_20", "VI")][4] == "too few (n=8)"
    assert [r[1] for r in fitz["rows"] if r[0] == "all sources"] == ["II", "IV", "VI"]


def test_response_index_reads_back_each_response_exactly(tmp_path, monkeypatch):
    from dermasynth_builder.curate import stream

    rows = [
        {"id": f"r{i}", "source": "hiba", "image_id": f"I{i}", "question_type": "q", "task": "qa"}
        for i in range(5)
    ]
    for r in rows:
        r.update(instruction="i", question="q", answer=f"answer {r['id']}", model="m")
        r.update(backend="b", call_id="c")
    again = {**rows[2], "answer": "the later line wins"}
    path = tmp_path / "responses.jsonl"
    lines = [json.dumps(r) for r in [*rows, again]] + ['{"id": "torn"']
    path.write_text("\n".join(lines))  # the last line has no newline: a torn tail
    monkeypatch.setattr(stream, "_key", lambda _id: 7)  # every id collides: lookups stay exact
    seen = []
    with stream.ResponseIndex(path, seen.append) as index:
        assert index.get("r0").answer == "answer r0" and index.get("r4").answer == "answer r4"
        assert index.get("r2").answer == "the later line wins"
        assert index.get("torn") is None and index.get("nope") is None
    assert len(seen) == 6
    assert stream.ResponseIndex(tmp_path / "missing.jsonl").get("r0") is None
    path.write_text("\n".join([*lines[:2], "not json", *lines[2:]]))  # damaged, not torn
    with pytest.raises(RunFolderError, match="line 3: not a JSON object"):
        stream.ResponseIndex(path)


def test_curation_streams_and_forgets_finished_images(tmp_path, monkeypatch):
    """The duplicate filter's memory is released image by image, and the rejected rows are
    written while pairs are, never gathered in a list."""
    from dermasynth_builder.curate import filters

    run, _, total = _craft_run(tmp_path)
    forgotten = []
    original = filters.DuplicateFilter.forget

    def spy(self, key):
        forgotten.append(key)
        original(self, key)

    monkeypatch.setattr(filters.DuplicateFilter, "forget", spy)
    summary = curate(run)
    images = {(json.loads(x)["source"], json.loads(x)["image_id"]) for x in
              (run / "requests.jsonl").read_text().splitlines()}  # fmt: skip
    assert sorted(forgotten) == sorted(images)  # each image forgotten once, when done
    assert summary.responses == total
    assert not list(run.glob("*.tmp"))


def test_grounding_precheck_never_skips_a_pattern_that_matches():
    """The union search that lets grounding skip its per-pattern reading finds a match
    wherever any single pattern does (on the grounding tests' answers and fragments of them)."""
    import re as _re

    from dermasynth_builder.curate import grounding

    source = (Path(__file__).parent / "test_grounding.py").read_text(encoding="utf-8")
    texts = _re.findall(r'"([^"\\]{8,})"', source)
    texts += [f"{a} {b}" for a, b in zip(texts, texts[1:], strict=False)]
    assert len(texts) > 100
    for text in texts:
        joined = grounding._joined(text)
        single = any(
            grounding._asserted(p, text) is not None for c in grounding.CHECKS for p in c.asserted
        )
        if single:
            assert grounding._ANY_ASSERTED.search(joined.lower()), text
