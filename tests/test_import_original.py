"""import-original: the published pairs in each plausible shape become a run folder that curate
takes, every pair matched to its image or listed in unmatched.jsonl with why."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from dermasynth_builder.cli import cli
from dermasynth_builder.commands.import_original import import_original
from dermasynth_builder.importer import dataset_source, import_pairs, parse_answer
from dermasynth_builder.paths import sample_root
from dermasynth_builder.run import iter_jsonl

ANSWER = "The lesion is a symmetric brown macule with a regular network and sharp borders."
OTHER = "A pink, scaly plaque with fine white scale and a slightly raised, irregular edge."
SI_Q = "Which dermoscopic structure dominates the centre of this lesion?"
SELF = "Generate a concise question and answer about the lesion in this image."
ALL = ("derm12345", "bcn20000", "pad_ufes_20", "scin", "hiba")


def sources(*names: str) -> list[str]:
    args = []
    for name in names:
        args += ["--source", f"{name}={sample_root(name)}"]
    return args


def run_import(file: Path, run: Path, *names: str):
    return CliRunner().invoke(import_original, [str(file), *sources(*names), "--out", str(run)])


def rows(run: Path, name: str) -> list[dict]:
    return list(iter_jsonl(run / name))


def wide(image_id: str, path: str, q1: str, q2: str) -> dict:
    """A per-image record as the paper's notebook wrote it (api_results/<ds>/<id>_response.json)."""
    return {
        "image_id": image_id,
        "image_path": path,
        "q1_general": {"question_type": "Observational Overview", "question": "Describe it."},
        "q1_general_question": "Describe the lesion.",
        "q1_general_prompt": "***** INSTRUCTIONS *****\nYou are...\n***** QUESTION *****\n"
        "Describe the lesion.\n***** RESPONSE FORMAT *****\n{...}",
        "q1_general_response": q1,
        "q2_dataset_specific": {"question_type": "Creativity"},
        "q2_dataset_question": SELF,
        "q2_dataset_response": q2,
    }


def test_wide_json_list_with_json_answers(tmp_path):
    fenced = "```json\n" + json.dumps({"answer": ANSWER}) + "\n```"
    own = json.dumps({"question": SI_Q, "answer": OTHER})
    data = [
        wide("DERM_904417", "/data/derm12345/train/acb/DERM_904417.jpg", fenced, own),
        wide("DERM_917305", "", json.dumps({"answer": OTHER}), json.dumps({"answer": ANSWER})),
    ]
    file = tmp_path / "wide.json"
    file.write_text(json.dumps(data))
    result = run_import(file, tmp_path / "run", "derm12345")
    assert result.exit_code == 0, result.output
    requests, responses = (
        rows(tmp_path / "run", "requests.jsonl"),
        rows(tmp_path / "run", "responses.jsonl"),
    )
    assert [(r["image_id"], r["slot"], r["bank"]) for r in requests] == [
        ("DERM_904417", 0, "general"), ("DERM_904417", 1, "source"),
        ("DERM_917305", 0, "general"), ("DERM_917305", 1, "source"),
    ]  # fmt: skip
    first, second = responses[0], responses[1]
    assert first["answer"] == ANSWER and first["question"] == "Describe the lesion."
    assert first["question_type"] == "Observational Overview" and not first["self_instruct"]
    assert second["self_instruct"] and second["question"] == SI_Q and second["answer"] == OTHER
    assert second["instruction"] == SELF and second["question_type"] == "Creativity"
    assert requests[1]["self_instruct"] and requests[1]["question"] == SELF
    assert requests[0]["image_path"] == "derm12345_train_part_1/acb/DERM_904417.jpg"
    assert {r["model"] for r in responses} == {"dermasynth-original"}
    assert {r["backend"] for r in responses} == {"import"} and responses[0]["usage"] == {}
    assert [r["id"] for r in requests] == [r["id"] for r in responses]
    assert [r["image_id"] for r in rows(tmp_path / "run", "records.jsonl")] == [
        "DERM_904417", "DERM_917305",
    ]  # fmt: skip
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["templates"]["version"].startswith("imported-") and info["import"]["matched"] == 4
    assert info["plan"]["recipe"] == "imported" and info["plan"]["requests"] == 4


def test_dict_of_lists_keyed_by_dataset_name(tmp_path):
    def pair(key: str, value: str) -> dict:
        return {key: value, "question": "What do you see?", "answer": ANSWER}

    data = {
        "derm12345": [pair("image_id", "DERM_904417")],
        "bcn20000": [pair("image_id", "BCN_0000019003.jpg")],
        "bcn20000_test": [pair("image_id", "BCN_0000019001")],
        "pad-ufes-20": [pair("img_id", "PAT_2311_4107_517.png")],
        "scin_clinical": [pair("image_id", "2290174488163509312")],
        "scin": [pair("image_path", "dataset/images/-6159047722830165793.png")],
        "hiba": [pair("image_id", "ISIC_9910214"), pair("image_id", "DERM_911982")],
    }
    file = tmp_path / "by_dataset.json"
    file.write_text(json.dumps(data))
    run = tmp_path / "run"
    result = run_import(file, run, *ALL)
    assert result.exit_code == 1, result.output
    got = [(r["source"], r["image_id"]) for r in rows(run, "requests.jsonl")]
    assert got == [
        ("derm12345", "DERM_904417"), ("bcn20000", "BCN_0000019003"),
        ("bcn20000", "BCN_0000019001"), ("pad_ufes_20", "PAT_2311_4107_517"),
        ("scin", "2290174488163509312"), ("scin", "-6159047722830165793"),
        ("hiba", "ISIC_9910214"),
    ]  # fmt: skip
    # a record filed under hiba is looked up in hiba only, even though derm12345 has the id
    (miss,) = rows(run, "unmatched.jsonl")
    assert miss["source"] == "hiba" and miss["reason"] == "no image with this id"
    assert (
        dataset_source("pad-ufes-20") == "pad_ufes_20" and dataset_source("BCN_20k") == "bcn20000"
    )


def test_flat_parquet(tmp_path):
    frame = pd.DataFrame({
        "image": [2290174488163509312, -3320918475517263041, 0],
        "dataset": ["scin", "SCIN", "hiba"],
        "instruction": ["What do you see?", "Describe the texture.", "What is it?"],
        "output": [ANSWER, OTHER, ANSWER],
        "question_type": ["overview", None, "diagnosis"],
    })  # fmt: skip
    file = tmp_path / "train-00000-of-00001.parquet"
    frame.to_parquet(file)
    run = tmp_path / "run"
    result = run_import(file, run, "scin", "hiba")
    assert result.exit_code == 1 and "(parquet)" in result.output, result.output
    requests = rows(run, "requests.jsonl")
    assert [(r["image_id"], r["question_type"], r["question"]) for r in requests] == [
        ("2290174488163509312", "overview", "What do you see?"),
        ("-3320918475517263041", "imported", "Describe the texture."),
    ]
    assert rows(run, "unmatched.jsonl")[0]["image_id"] == "0"


def test_flat_shapes_find_their_columns(tmp_path):
    records = [
        {"isic_id": "ISIC_9910214", "prompt": "What is shown?", "response": ANSWER},
        {"file_name": "ISIC_9910387.jpg", "query": "What colour?", "response": OTHER},
        {"image_id": "ISIC_9910522", "conversations": [
            {"from": "human", "value": "<image>\nWhat is this?"}, {"from": "gpt", "value": ANSWER},
        ]},
    ]  # fmt: skip
    file = tmp_path / "flat.jsonl"
    file.write_text("\n".join(json.dumps(r) for r in records) + "\n{broken\n")
    result = run_import(file, tmp_path / "run", "hiba")
    assert result.exit_code == 1, result.output
    questions = [r["question"] for r in rows(tmp_path / "run", "requests.jsonl")]
    assert questions == ["What is shown?", "What colour?", "What is this?"]
    (bad,) = rows(tmp_path / "run", "unmatched.jsonl")
    assert bad["reason"] == "bad record" and "line 4" in bad["detail"]
    columnar = tmp_path / "columns.json"
    columns = {"image_id": ["ISIC_9910214"], "question": ["What is shown?"], "answer": [ANSWER]}
    columnar.write_text(json.dumps({"model": "gemini-2.0-flash-exp", "data": columns}))
    assert run_import(columnar, tmp_path / "run2", "hiba").exit_code == 0
    assert rows(tmp_path / "run2", "responses.jsonl")[0]["model"] == "gemini-2.0-flash-exp"


@pytest.mark.parametrize(
    "content",
    [
        {"bcn20000": {"BCN_0000019003": {"question": "What is it?", "answer": ANSWER}}},
        {"BCN_0000019003": {"q1_general_question": "What is it?", "responses": {"q1": ANSWER}}},
        {"data": {"image_id": ["BCN_0000019003"], "question": ["What is it?"],
                  "answer": [ANSWER]}},
        {"rows": [{"row_idx": 0, "row": {"image": {"path": "BCN_0000019003.jpg", "bytes": None},
                                         "question": "What is it?", "answer": ANSWER}}]},
    ],
)  # fmt: skip
def test_containers_are_unwrapped(tmp_path, content):
    file = tmp_path / "c.json"
    file.write_text(json.dumps(content))
    result = run_import(file, tmp_path / "run", "bcn20000")
    assert result.exit_code == 0, result.output
    (response,) = rows(tmp_path / "run", "responses.jsonl")
    assert response["image_id"] == "BCN_0000019003" and response["answer"] == ANSWER
    assert response["instruction"] == "What is it?"


def test_parse_answer():
    assert parse_answer(ANSWER) == (ANSWER, None)
    assert parse_answer("```json\n" + json.dumps({"answer": ANSWER}) + "\n```") == (ANSWER, None)
    assert parse_answer(json.dumps({"question": SI_Q, "answer": OTHER})) == (OTHER, SI_Q)
    assert parse_answer({"q1": {"answer": ANSWER}}) == (ANSWER, None)
    assert parse_answer('{"answer": "cut short by max tok') == ("cut short by max tok", None)
    assert parse_answer("```\n" + json.dumps([{"Answer": OTHER}]) + "\n```") == (OTHER, None)
    assert parse_answer(None) == (None, None) and parse_answer(float("nan")) == (None, None)


def test_unmatched_are_counted_and_written(tmp_path):
    data = [
        {"image_id": "DERM_904417", "question": "What is it?", "answer": ANSWER},
        {"image_id": "DERM_000000", "question": "What is it?", "answer": ANSWER},
        {"image_id": "BCN_0000019003", "question": "What is it?", "answer": ANSWER},
        {"image_id": "DERM_911982", "question": "What is it?", "answer": None},
        {"image_id": "DERM_904417", "question": "What is it?", "answer": ANSWER},
    ]
    file = tmp_path / "pairs.json"
    file.write_text(json.dumps({"data": data}))
    run = tmp_path / "run"
    result = run_import(file, run, "derm12345")
    assert result.exit_code == 1
    reasons = [(r["source"], r["reason"]) for r in rows(run, "unmatched.jsonl")]
    assert reasons == [
        ("derm12345", "no image with this id"), ("bcn20000", "source not given"),
        (None, "bad record"), ("derm12345", "duplicate pair"),
    ]  # fmt: skip
    assert "source not given" in result.output and "no image with this id" in result.output
    assert "1 of 5 pairs imported" in result.output
    info = json.loads((run / "run.json").read_text())["import"]
    assert (info["pairs"], info["matched"], info["unmatched"]) == (5, 1, 4)


@pytest.mark.parametrize(
    "content, expect",
    [
        ([{"image_id": "X", "caption_text_id": 3, "label": "nevus"}], "caption_text_id"),
        ({"foo": 1, "bar": "baz"}, "bar, foo"),
        ([{"question": "Q?", "answer": ANSWER}], "no image id"),
    ],
)
def test_wrong_shape_is_a_usage_error(tmp_path, content, expect):
    file = tmp_path / "odd.json"
    file.write_text(json.dumps(content))
    result = run_import(file, tmp_path / "run", "hiba")
    assert result.exit_code == 2 and expect in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


def test_refuses_planned_run_and_bad_usage(tmp_path):
    file = tmp_path / "p.json"
    file.write_text(json.dumps([{"image_id": "ISIC_9910214", "question": "Q?", "answer": ANSWER}]))
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"format": 1, "plan": {}}))
    assert run_import(file, run, "hiba").exit_code == 2
    assert run_import(file, tmp_path / "other").exit_code == 2  # no --source


def test_same_input_same_bytes_and_curate_keeps_pairs(tmp_path):
    data = [
        wide("ISIC_9910214", "", json.dumps({"answer": ANSWER}),
             json.dumps({"question": SI_Q, "answer": OTHER})),
        wide("ISIC_9910387", "", OTHER, json.dumps({"answer": ANSWER})),
    ]  # fmt: skip
    file = tmp_path / "wide.json"
    file.write_text(json.dumps({"hiba": data}))
    first, second = tmp_path / "a", tmp_path / "b"
    assert import_pairs(file, [("hiba", sample_root("hiba"))], first).total_matched == 4
    import_pairs(file, [("hiba", sample_root("hiba"))], second)
    names = ("run.json", "records.jsonl", "requests.jsonl", "responses.jsonl", "unmatched.jsonl")
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    result = CliRunner().invoke(cli, ["curate", str(first), "--no-figures"])
    assert result.exit_code == 0, result.output
    pairs = rows(first, "pairs.jsonl")
    assert len(pairs) == 4 and {p["source"] for p in pairs} == {"hiba"}
    assert all(p["template_version"].startswith("imported-") and p["license"] for p in pairs)
    assert any(p["self_instruct"] and p["question"] == SI_Q for p in pairs)
    # re-importing into the same folder is allowed and drops the stale curate output
    again = run_import(file, first, "hiba")
    assert again.exit_code == 0 and not (first / "pairs.jsonl").exists()


def test_question_answer_img_path_rows_with_an_image_column(tmp_path):
    """The successor project's layout: question / answer / img_path, img_path an image column."""
    image = next(sample_root("hiba").glob("ISIC_9910214.*"))
    frame = pd.DataFrame({
        "question": ["What is it?", "Describe the border."],
        "answer": [ANSWER, OTHER],
        "img_path": [{"bytes": image.read_bytes(), "path": image.name},
                     {"bytes": image.read_bytes(), "path": f"images/{image.name}"}],
    })  # fmt: skip
    file = tmp_path / "train.parquet"
    frame.to_parquet(file)
    run = tmp_path / "run"
    result = run_import(file, run, "hiba")
    assert result.exit_code == 0, result.output
    requests = rows(run, "requests.jsonl")
    assert [(r["image_id"], r["question"]) for r in requests] == [
        ("ISIC_9910214", "What is it?"),
        ("ISIC_9910214", "Describe the border."),
    ]


def test_chat_text_before_a_fenced_json_answer_is_parsed():
    chatty = "Sure! Here is my answer:\n```json\n" + json.dumps({"answer": ANSWER}) + "\n```\n"
    assert parse_answer(chatty) == (ANSWER, None)
    own = "Okay.\n\n```\n" + json.dumps({"question": SI_Q, "answer": OTHER}) + "\n```"
    assert parse_answer(own) == (OTHER, SI_Q)
    prose = "Use the ABCD rule:\n```\nA: asymmetry\n```"
    assert parse_answer(prose) == (prose, None)  # a fenced block that is not JSON stays text


def test_scin_case_id_of_several_images_is_not_guessed(tmp_path):
    cases = pd.read_csv(sample_root("scin") / "dataset" / "scin_cases.csv", dtype=str)
    images = cases.filter(like="image_").filter(like="_path").notna().sum(axis=1)
    several = cases.loc[images > 1, "case_id"].iloc[0]
    data = [{"image_id": several, "dataset": "scin", "question": "What is it?", "answer": ANSWER}]
    file = tmp_path / "scin.json"
    file.write_text(json.dumps(data))
    run = tmp_path / "run"
    result = run_import(file, run, "scin")
    assert result.exit_code == 1, result.output
    assert "case id names several images" in result.output
    assert "0 of 1 pairs imported" in result.output
    (unmatched,) = rows(run, "unmatched.jsonl")
    assert unmatched["reason"] == "case id names several images"
    assert not rows(run, "requests.jsonl")


def test_imported_text_carries_dermasynth_licence_and_card_hides_local_paths(tmp_path):
    from dermasynth_builder.package import package

    data = [{"image_id": "ISIC_9910214", "question": "What is it?", "answer": ANSWER}]
    file = tmp_path / "secret-home" / "pairs.json"
    file.parent.mkdir()
    file.write_text(json.dumps({"hiba": data}))
    run = tmp_path / "run"
    assert run_import(file, run, "hiba").exit_code == 0
    assert CliRunner().invoke(cli, ["curate", str(run), "--no-figures"]).exit_code == 0
    out = tmp_path / "release"
    package(run, out)
    card = (out / "README.md").read_text()
    assert "CC BY-NC 4.0" in card and "published DermaSynth text" in card
    assert str(tmp_path) not in card and "`pairs.json`" in card
    table = pq.read_table(
        next(out.glob("data/hiba/*.parquet")), columns=["text_license", "license"]
    )
    assert table.column("text_license").to_pylist() == ["CC BY-NC 4.0"]
    assert table.column("license").to_pylist() == ["CC BY 4.0"]
