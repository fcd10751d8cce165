"""Finding the pairs in a record: which fields hold ids, questions and answers, and their text."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from .read import (
    ANSWER_WORDS,
    CAPTION_WORDS,
    CONVERSATION_KEYS,
    ID_KEYS,
    MODEL_KEYS,
    PATH_KEYS,
    QUESTION_WORDS,
    SOURCE_KEYS,
    ImportInputError,
    Loaded,
    norm,
    plain,
)

DEFAULT_MODEL = "dermasynth-original"
NOT_TEXT = frozenset({"type", "types", "category", "id", "ids", "count", "len", "length",
                      "tokens", "index", "idx", "score"})  # fmt: skip
TYPE_WORDS = ("question_type", "type", "qtype", "category", "task_type")
FENCE = re.compile(r"^```[\w-]*\s*\n?(.*?)\n?\s*```$", re.S)
# A fenced block anywhere in an answer ("Sure! Here it is:\n```json\n{...}\n```").
FENCED_BLOCK = re.compile(r"```[\w-]*[ \t]*\n(.*?)\n?[ \t]*```", re.S)
QUESTION_SECTION = re.compile(r"\*{3,}\s*QUESTION\s*\*{3,}\s*(.*?)(?=\n\s*\*{3,}|\Z)", re.S)


@dataclass(slots=True)
class Slot:
    """Where one pair lives in a record: its answer field and what goes with it."""

    answer: str
    question: str | None
    qtype: str | None
    slot: int | None
    bank: str
    default_type: str
    task: str = "qa"


@dataclass(slots=True)
class Layout:
    """Which fields of a record shape hold what; computed once per distinct key set."""

    id_key: str | None
    path_key: str | None
    source_key: str | None
    model_key: str | None
    slots: list[Slot]
    conversation: str | None

    def describe(self) -> str:
        parts = [f"id={self.id_key or '-'}", f"path={self.path_key or '-'}"]
        parts += [f"{s.question or '-'}->{s.answer}" for s in self.slots]
        if self.conversation:
            parts.append(f"{self.conversation}[human->gpt]")
        return " ".join(parts)


def flatten(record: dict[str, Any]) -> dict[str, Any]:
    """Normalized keys; nested dicts (``q1_general: {question, ...}``) become ``q1_general_*``
    (a top-level field of the same name wins), except answer fields and HF image dicts."""
    flat: dict[str, Any] = {}
    nested: list[tuple[str, Any]] = []
    for key, value in record.items():
        k = norm(key)
        if (
            isinstance(value, dict)
            and not set(k.split("_")) & set(ANSWER_WORDS)
            and k not in ID_KEYS
            and k not in PATH_KEYS  # an image column (HF {"bytes", "path"}) names its file
        ):
            nested += [(f"{k}_{norm(sub)}", inner) for sub, inner in value.items()]
        else:
            flat.setdefault(k, value)
    for k, value in nested:
        flat.setdefault(k, value)
    return flat


def _role(key: str, vocabulary: tuple[str, ...]) -> tuple[int, str] | None:
    words = key.split("_")
    if set(words) & NOT_TEXT:
        return None
    for rank, word in enumerate(vocabulary):
        for i, w in enumerate(words):
            if w in (word, word + "s"):  # "responses": {"q1": ...} flattens to responses_q1
                return rank, "_".join(words[:i] + ["*"] + words[i + 1 :])
    return None


def analyse(keys: tuple[str, ...]) -> Layout:
    """Pair question and answer fields that share a stem (``q1_general_question`` with
    ``q1_general_response``, ``instruction`` with ``output``); slot and bank come from the stem."""
    questions: dict[str, tuple[int, str]] = {}
    for key in keys:
        role = _role(key, QUESTION_WORDS)
        if role and (role[1] not in questions or role[0] < questions[role[1]][0]):
            questions[role[1]] = (role[0], key)
    answers: dict[str, tuple[int, str, str]] = {}
    for key in keys:
        role = _role(key, ANSWER_WORDS)
        task = "qa"
        if role is None and (role := _role(key, CAPTION_WORDS)) is not None:
            task = "caption"
        if role and (role[1] not in answers or role[0] < answers[role[1]][0]):
            answers[role[1]] = (role[0], key, task)
    slots = []
    for stem, (_, key, task) in answers.items():
        words = set(stem.split("_"))
        number = next((int(w[1:]) for w in words if re.fullmatch(r"q\d+", w)), None)
        if "general" in words or number == 1:
            bank, default = "general", "imported_general"
        elif words & {"dataset", "source", "specific"} or number == 2:
            bank, default = "source", "imported_dataset"
        else:
            bank, default = "general", "imported" if task == "qa" else "imported_caption"
        same = [stem.replace("*", w) for w in TYPE_WORDS]
        if number is not None:  # q2_dataset_specific_question_type goes with q2_dataset_response
            same += [k for k in keys if k.startswith(f"q{number}_") and k.endswith("_type")]
        qtype = next((k for k in same if k in keys), None)
        question = questions.get(stem, (0, None))[1]
        if question is None and number is not None:
            near = [v for k, v in questions.items() if f"q{number}" in k.split("_")]
            question = min(near)[1] if near else None
        slot = None if number is None else number - 1
        slots.append(Slot(key, question, qtype, slot, bank, default, task))
    slots.sort(key=lambda s: (s.slot is None, s.slot or 0, s.answer))
    pick = lambda names: next((k for k in names if k in keys), None)  # noqa: E731
    return Layout(pick(ID_KEYS), pick(PATH_KEYS), pick(SOURCE_KEYS), pick(MODEL_KEYS), slots,
                  pick(CONVERSATION_KEYS))  # fmt: skip


def text_of(value: Any) -> str | None:
    """Stripped text of a scalar cell; empty, NaN and containers are None."""
    value = plain(value)
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


def id_text(value: Any) -> str | None:
    """An image id cell as text: ints stay exact, an HF image dict gives its path."""
    value = plain(value)
    if isinstance(value, dict):
        value = value.get("path") or value.get("image_id")
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return text_of(value)


def clean_question(text: str | None) -> str | None:
    """The question itself: a full API prompt keeps only its QUESTION section; no <image> tag."""
    if text is None:
        return None
    match = QUESTION_SECTION.search(text)
    if match:
        text = match.group(1)
    return re.sub(r"<image>\s*", "", text).strip() or None


def parse_answer(value: Any) -> tuple[str | None, str | None]:
    """(answer, the model's own question) from plain text, a dict, or JSON text (fenced, or cut
    short by MAX_TOKENS: the answer string is then salvaged)."""
    value = plain(value)
    if isinstance(value, str):
        text = value.strip()
        fenced = FENCE.match(text)
        text = fenced.group(1).strip() if fenced else text
        if not fenced and not text.startswith(("{", "[")):
            block = FENCED_BLOCK.search(text)  # chat text around a fenced JSON answer
            if block and block.group(1).strip().startswith(("{", "[")):
                inner, own = parse_answer(block.group(1))
                if inner is not None and not inner.startswith(("{", "[")):
                    return inner, own
        if not text.startswith(("{", "[")):
            return text or None, None
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            found = {k: re.search(rf'"{k}"\s*:\s*"((?:[^"\\]|\\.)*)', text)
                     for k in ("answer", "question")}  # fmt: skip
            if found["answer"] is None:
                return text, None
            got = {k: json.loads(f'"{m.group(1)}"') if m else None for k, m in found.items()}
            return got["answer"].strip() or None, text_of(got["question"])
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, dict):
        return text_of(value), None
    fields = {norm(k): v for k, v in value.items()}
    answer = next((fields[k] for k in ANSWER_WORDS + CAPTION_WORDS if k in fields), None)
    if answer is None and len(fields) == 1:
        return parse_answer(next(iter(fields.values())))  # {"q1": {"answer": ...}}
    if isinstance(answer, (dict, list)):
        answer, _ = parse_answer(answer)
    question = next((fields[k] for k in QUESTION_WORDS if k in fields), None)
    return text_of(answer), text_of(question)


@dataclass(slots=True)
class Candidate:
    """One pair as found in the file, before its image is looked up."""

    row: int
    dataset: str | None
    image_id: str | None
    image_path: str | None
    slot: int | None
    bank: str
    question_type: str
    task: str
    instruction: str | None
    question: str | None  # the model's own question (self-instruct)
    answer: str | None
    model: str
    problem: str | None = None


def extract(loaded: Loaded, layouts: Counter) -> list[Candidate]:
    """Every pair of every record; a file where no record has pairs or ids is a format error."""
    cache: dict[tuple[str, ...], Layout] = {}
    found: list[Candidate] = []
    seen_keys: set[str] = set()
    for number, (record, container) in enumerate(loaded.rows, start=1):
        flat = flatten(record)
        keys = tuple(flat)
        seen_keys.update(keys)
        layout = cache.get(keys) or cache.setdefault(keys, analyse(keys))
        layouts[layout.describe()] += 1
        base = {
            "row": number,
            "dataset": text_of(flat.get(layout.source_key or "")) or container,
            "image_id": id_text(flat.get(layout.id_key or "")),
            "image_path": id_text(flat.get(layout.path_key or "")),
            "model": text_of(flat.get(layout.model_key or "")) or loaded.model or DEFAULT_MODEL,
        }
        for s in layout.slots:
            if flat.get(s.answer) is None and flat.get(s.question or "") is None:
                continue  # an empty slot of a sparse table is no pair
            answer, own = parse_answer(flat.get(s.answer))
            found.append(Candidate(**base, slot=s.slot, bank=s.bank, task=s.task,
                                   question_type=text_of(flat.get(s.qtype or "")) or s.default_type,
                                   instruction=clean_question(text_of(flat.get(s.question or ""))),
                                   question=own, answer=answer))  # fmt: skip
        turns = flat.get(layout.conversation or "")
        pending, index = None, 0
        for turn in turns if isinstance(turns, list) else []:
            t = {norm(k): v for k, v in turn.items()} if isinstance(turn, dict) else {}
            role = str(t.get("from") or t.get("role") or "").lower()
            content = t.get("value", t.get("content"))
            if role in ("human", "user"):
                pending = clean_question(text_of(content))
            elif role in ("gpt", "assistant", "model"):
                answer, own = parse_answer(content)
                found.append(Candidate(**base, slot=index, bank="general", task="qa",
                                       question_type="imported", instruction=pending,
                                       question=own, answer=answer))  # fmt: skip
                pending, index = None, index + 1
    shown = ", ".join(sorted(seen_keys)[:40]) or "none"
    if not found and not loaded.bad:
        raise ImportInputError(
            f"no question/answer fields found (keys: {shown}); expected e.g. question+answer, "
            "instruction+output, prompt+response or q1_general_question+q1_general_response"
        )
    if found and not any(lay.id_key or lay.path_key for lay in cache.values()):
        raise ImportInputError(f"no image id field found (keys: {shown}); expected e.g. image_id")
    for c in found:
        if c.image_id is None and c.image_path is None:
            c.problem = "no image id"
        elif c.answer is None:
            c.problem = "no answer"
        elif c.task == "qa" and c.instruction is None and c.question is None:
            c.problem = "no question"
    for line, why in loaded.bad:
        found.append(Candidate(line, None, None, None, None, "general", "imported", "qa",
                               None, None, None, DEFAULT_MODEL, why))  # fmt: skip
    return found
