"""Import the published DermaSynth text pairs into a run folder, joined to their source images.

The release (Hub Parquet, the repo's JSON) is text only and its exact schema is undocumented, so
fields are found by name patterns, not a fixed schema. Every pair either lands in the run folder
(records, requests, responses, as ``plan`` and ``generate`` write them, so ``curate`` and
``package`` take it unchanged) or in unmatched.jsonl with a reason; none is dropped silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import posixpath
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .records import SourceRecord
from .runfolder import (
    FAILURES,
    PAIRS,
    RECORDS,
    REJECTED,
    REQUESTS,
    RESPONSES,
    RUN_JSON,
    SKIPPED,
    write_json_atomic,
    write_jsonl_atomic,
)
from .sources import ReadResult, get_source

UNMATCHED = "unmatched.jsonl"
DEFAULT_MODEL = "dermasynth-original"
NOT_GIVEN, NO_IMAGE, BAD_RECORD, DUPLICATE = (
    "source not given", "no image with this id", "bad record", "duplicate pair",
)  # fmt: skip
Reader = Callable[[str, Path], ReadResult]

# Dataset names (the original's bank keys, squashed to [a-z0-9]) -> our source names; strict
# enough that an image id such as BCN_0000019003 is never taken for one.
DATASETS = ((r"derm12345[a-z]*", "derm12345"), (r"bcn(20000|20k)?[a-z]*", "bcn20000"),
            (r"padufes(20)?[a-z]*", "pad_ufes_20"), (r"scin[a-z]*", "scin"),
            (r"hiba[a-z]*", "hiba"))  # fmt: skip
ID_PATTERNS = ((r"derm_", "derm12345"), (r"bcn_", "bcn20000"), (r"pat_\d", "pad_ufes_20"),
               (r"-?\d{6,}$", "scin"))  # fmt: skip
ID_KEYS = ("image_id", "imageid", "img_id", "image_name", "img_name", "isic_id", "file_name",
           "filename", "image_file", "img_file", "image", "img", "file", "id")  # fmt: skip
PATH_KEYS = ("image_path", "img_path", "file_path", "filepath", "path", "image_url", "url")
SOURCE_KEYS = ("source", "dataset", "dataset_name", "source_dataset", "data_source", "subset",
               "origin", "collection", "database")  # fmt: skip
MODEL_KEYS = ("model", "model_name", "model_id", "generator", "teacher_model", "llm")
QUESTION_WORDS = ("question", "instruction", "query", "prompt", "input")
ANSWER_WORDS = ("answer", "response", "output", "completion", "reply")
CAPTION_WORDS = ("caption", "description")
NOT_TEXT = frozenset({"type", "types", "category", "id", "ids", "count", "len", "length",
                      "tokens", "index", "idx", "score"})  # fmt: skip
TYPE_WORDS = ("question_type", "type", "qtype", "category", "task_type")
CONVERSATION_KEYS = ("conversations", "conversation", "messages")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")
FENCE = re.compile(r"^```[\w-]*\s*\n?(.*?)\n?\s*```$", re.S)
QUESTION_SECTION = re.compile(r"\*{3,}\s*QUESTION\s*\*{3,}\s*(.*?)(?=\n\s*\*{3,}|\Z)", re.S)


class ImportInputError(Exception):
    """The file cannot be read as pairs at all, or RUN holds something else (exit 2)."""


def norm(key: str) -> str:
    """Key spelling-insensitive: "Q1-General Response" and "q1_general_response" are one key."""
    return re.sub(r"[^a-z0-9]+", "_", str(key).lower()).strip("_")


def dataset_source(name: Any) -> str | None:
    """Our source name for a dataset name ("pad-ufes-20", "scin_clinical", ...), else None."""
    squashed = re.sub(r"[^a-z0-9]", "", str(name).lower())
    return next((src for pattern, src in DATASETS if re.fullmatch(pattern, squashed)), None)


def infer_source(image_id: str) -> str | None:
    """The source an id's spelling suggests; only used to explain an unmatched pair."""
    return next((s for p, s in ID_PATTERNS if re.match(p, image_id.lower())), None)


def plain(value: Any) -> Any:
    """JSON-ready Python values from pandas/numpy cells; NaN becomes None."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


# ---------------------------------------------------------------- reading the file


@dataclass(slots=True)
class Loaded:
    """The file's records, each with the dataset its container named (if any)."""

    rows: list[tuple[dict[str, Any], str | None]]  # (record, dataset name from its container)
    bad: list[tuple[int, str]] = field(default_factory=list)  # (line, why) for broken JSON lines
    model: str | None = None
    format: str = "json"


def load(path: Path) -> Loaded:
    """Read JSON, JSON Lines, Parquet or CSV (by extension and magic bytes) into flat records."""
    with open(path, "rb") as fh:
        magic = fh.read(4)
    suffix = path.suffix.lower()
    if magic == b"PAR1" or suffix in (".parquet", ".pq"):
        import pandas as pd

        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds
            raise ImportInputError(f"{path}: not readable as Parquet: {exc}") from None
        return Loaded([(plain(r), None) for r in frame.to_dict("records")], format="parquet")
    if suffix in (".csv", ".tsv"):
        import pandas as pd

        try:
            frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str,
                                keep_default_na=False)  # fmt: skip
        except (ValueError, pd.errors.ParserError) as exc:
            raise ImportInputError(f"{path}: not readable as CSV: {exc}") from None
        return Loaded([(r, None) for r in frame.to_dict("records")], format="csv")
    text = path.read_text(encoding="utf-8-sig")
    if suffix not in (".jsonl", ".ndjson"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            if not text.lstrip().startswith("{") or text.strip().count("\n") == 0:
                raise ImportInputError(f"{path}: not JSON: {exc}") from None
        else:
            model = None
            if isinstance(data, dict):
                model = next((data[k] for k in data if norm(k) in MODEL_KEYS), None)
            found = list(walk(data, None))
            if not found:
                keys = ", ".join(sorted(map(str, data))) if isinstance(data, dict) else "none"
                raise ImportInputError(f"{path}: no records found (top-level keys: {keys})")
            return Loaded(found, model=str(model) if model else None)
    loaded = Loaded([], format="jsonl")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            loaded.bad.append((number, f"line {number}: not JSON: {exc.msg}"))
            continue
        loaded.rows.extend(walk(obj, None) if isinstance(obj, dict) else [])
    if not loaded.rows and loaded.bad:
        raise ImportInputError(f"{path}: no line is JSON ({loaded.bad[0][1]})")
    return loaded


def looks_like_record(obj: dict[str, Any]) -> bool:
    """A dict holding an image id, path, conversation or answer field (not a container)."""
    keys = [norm(k) for k in obj]
    words = {w.removesuffix("s") for k in keys for w in k.split("_")}
    return any(k in ID_KEYS or k in PATH_KEYS or k in CONVERSATION_KEYS for k in keys) or bool(
        words & set(ANSWER_WORDS + CAPTION_WORDS)
    )


def walk(
    obj: Any, dataset: str | None, depth: int = 0, key: str | None = None
) -> Iterator[tuple[dict, str | None]]:
    """Unwrap containers: a list of records, a dict of lists keyed by dataset (or by split,
    "data", ...), a dict keyed by image id (``key``), column-oriented dicts, Hub ``{"row": ...}``
    rows. ``dataset`` is the source named by an enclosing key."""
    if isinstance(obj, list):
        for item in obj:
            if isinstance(item, dict):
                yield from walk(item, dataset, depth + 1)
        return
    if not isinstance(obj, dict) or depth > 4:
        return
    lists = [v for v in obj.values() if isinstance(v, list)]
    columnar = bool(lists) and len(lists) == len(obj) and len({len(v) for v in lists}) == 1
    columnar = columnar and not any(isinstance(x, dict) for v in lists for x in v)
    if columnar and looks_like_record(obj):
        for values in zip(*lists, strict=True):
            yield dict(zip(obj, values, strict=True)), dataset
        return
    if looks_like_record(obj):
        if key is not None and not any(norm(k) in ID_KEYS + PATH_KEYS for k in obj):
            obj = {"image_id": key, **obj}  # a dict keyed by image id
        yield obj, dataset
        return
    keyed = all(isinstance(v, dict) for v in obj.values())
    for name, value in obj.items():
        if isinstance(value, (list, dict)):
            named = dataset_source(name)
            image_key = name if keyed and not named else None
            yield from walk(value, named or dataset, depth + 1, image_key)


# ---------------------------------------------------------------- finding pairs in a record


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
            and (k not in ID_KEYS)
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


# ---------------------------------------------------------------- matching images


def names(value: str) -> list[str]:
    """Lower-cased spellings an image can be named by: as given, file name, file name stem."""
    base = posixpath.basename(value.replace("\\", "/"))
    stem = base.rsplit(".", 1)[0] if base.lower().endswith(IMAGE_SUFFIXES) else base
    return list(dict.fromkeys([value.lower(), base.lower(), stem.lower()]))


class ImageIndex:
    """Each given source's records by id, file name and path; SCIN also by case id (last)."""

    def __init__(self, results: dict[str, list[SourceRecord]]):
        self.keys: dict[str, dict[str, SourceRecord]] = {}
        self.cases: dict[str, dict[str, SourceRecord]] = {}
        for name, records in results.items():
            keys, cases = self.keys.setdefault(name, {}), self.cases.setdefault(name, {})
            for r in records:
                for key in [r.image_id.lower(), *names(r.image_path)]:
                    keys.setdefault(key, r)
                if r.extra.get("case_id"):
                    cases.setdefault(str(r.extra["case_id"]).lower(), r)

    def find(self, c: Candidate, sources: list[str]) -> tuple[SourceRecord, str] | None:
        tries = [(k, "file name") for k in (names(c.image_id) if c.image_id else [])]
        tries += [(k, "image path") for k in (names(c.image_path) if c.image_path else [])]
        for table, label in ((self.keys, None), (self.cases, "case id")):
            for key, how in tries:
                for source in sources:
                    hit = table[source].get(key)
                    if hit is not None:
                        exact = how != "image path" and key == hit.image_id.lower()
                        return hit, label or ("image id" if exact else how)
        return None


def resolve(
    c: Candidate, index: ImageIndex, given: list[str]
) -> tuple[SourceRecord | None, str, str | None]:
    """(record, how it matched, source) or (None, reason, likely source)."""
    named = dataset_source(c.dataset) if c.dataset else None
    guess = named or infer_source(names(c.image_id or c.image_path or "")[-1])
    if named and named not in given:
        return None, NOT_GIVEN, named
    hit = index.find(c, [named] if named else sorted(given, key=lambda s: s != guess))
    if hit is not None:
        return hit[0], hit[1], hit[0].source
    return None, NOT_GIVEN if guess and guess not in given else NO_IMAGE, guess


# ---------------------------------------------------------------- writing the run folder


@dataclass(slots=True)
class ImportSummary:
    """The counts the command prints and run.json records."""

    run: Path
    format: str = ""
    pairs: int = 0
    read: dict[str, int] = field(default_factory=dict)  # source -> records read
    matched: Counter = field(default_factory=Counter)  # source -> pairs
    images: Counter = field(default_factory=Counter)  # source -> images
    matched_by: Counter = field(default_factory=Counter)  # how -> pairs
    unmatched: Counter = field(default_factory=Counter)  # (source or "?", reason) -> pairs
    layouts: Counter = field(default_factory=Counter)  # layout description -> records

    @property
    def total_matched(self) -> int:
        return sum(self.matched.values())

    @property
    def total_unmatched(self) -> int:
        return sum(self.unmatched.values())


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def import_pairs(
    file: Path, sources: list[tuple[str, Path]], run: Path, reader: Reader | None = None
) -> ImportSummary:
    """Write run.json, records, skipped, requests, responses and unmatched.jsonl for ``file``."""
    if (run / RUN_JSON).is_file():
        with open(run / RUN_JSON, encoding="utf-8") as fh:
            if "import" not in json.load(fh):
                raise ImportInputError(f"{run} holds a planned run; import into a new folder")
    read = reader or (lambda name, root: get_source(name).read(root))
    summary = ImportSummary(run)
    digest = sha256_file(file)
    loaded = load(file)
    summary.format = loaded.format
    found = extract(loaded, summary.layouts)
    results = {name: read(name, root) for name, root in sources}
    summary.read = {name: len(r.records) for name, r in results.items()}
    index = ImageIndex({name: r.records for name, r in results.items()})
    given = [name for name, _ in sources]
    requests: list[dict[str, Any]] = []
    responses: list[dict[str, Any]] = []
    unmatched: list[dict[str, Any]] = []
    used: set[tuple[str, str]] = set()
    occurrences: Counter = Counter()
    ids: set[str] = set()
    for c in found:
        summary.pairs += 1
        record, how, source = (None, BAD_RECORD, None) if c.problem else resolve(c, index, given)
        if record is not None:
            slot = c.slot if c.slot is not None else occurrences[(source, record.image_id)]
            occurrences[(source, record.image_id)] += 1
            shown = c.question or c.instruction or ""
            rid = hashlib.sha256("\x1f".join(
                map(str, (source, record.image_id, c.slot, shown, c.answer))
            ).encode("utf-8")).hexdigest()[:20]  # fmt: skip
            if rid in ids:
                record, how = None, DUPLICATE
        if record is None:
            source = source or dataset_source(c.dataset or "") or None
            summary.unmatched[(source or "?", how)] += 1
            unmatched.append({"row": c.row, "source": source, "dataset": c.dataset,
                              "image_id": c.image_id, "image_path": c.image_path, "slot": c.slot,
                              "reason": how, "detail": c.problem or "", "question":
                              c.question or c.instruction, "answer": c.answer})  # fmt: skip
            continue
        assert source is not None
        ids.add(rid)
        used.add((source, record.image_id))
        summary.matched[source] += 1
        summary.matched_by[how] += 1
        request = {"id": rid, "source": source, "image_id": record.image_id,
                   "image_path": record.image_path, "slot": slot, "bank": c.bank,
                   "question_type": c.question_type, "task": c.task,
                   "self_instruct": c.question is not None, "question": c.instruction or "",
                   "context": "", "system_digest": ""}  # fmt: skip
        requests.append(request)
        responses.append({"id": rid, "source": source, "image_id": record.image_id,
                          "question_type": c.question_type, "bank": c.bank, "task": c.task,
                          "self_instruct": c.question is not None,
                          "instruction": request["question"], "question": shown,
                          "answer": c.answer, "model": c.model, "backend": "import",
                          "finish_reason": "STOP", "call_id": rid, "call_size": 1,
                          "attempts": 1, "latency_s": 0, "usage": {}})  # fmt: skip
    run.mkdir(parents=True, exist_ok=True)
    records = [r for name in given for r in results[name].records if (name, r.image_id) in used]
    summary.images.update(r.source for r in records)
    write_jsonl_atomic(run / RECORDS, (r.to_dict() for r in records))
    skipped = ({"source": name, **s.to_dict()} for name in given for s in results[name].skipped)
    write_jsonl_atomic(run / SKIPPED, skipped)
    write_jsonl_atomic(run / REQUESTS, requests)
    write_jsonl_atomic(run / RESPONSES, responses)
    write_jsonl_atomic(run / UNMATCHED, unmatched)
    for stale in (FAILURES, PAIRS, REJECTED):  # left by an earlier import into this folder
        (run / stale).unlink(missing_ok=True)
    write_json_atomic(run / RUN_JSON, {
        "format": 1,
        "plan": {"seed": None, "limit": None, "recipe": "imported", "requests": len(requests),
                 "sources": {name: {"root": os.path.abspath(root), "read": summary.read[name],
                                    "records": summary.images[name],
                                    "skipped": len(results[name].skipped)}
                             for name, root in sources}},
        "templates": {"version": f"imported-{digest[:12]}", "digests": {}},
        "import": {"file": os.path.abspath(file), "sha256": digest, "format": loaded.format,
                   "pairs": summary.pairs, "matched": summary.total_matched,
                   "unmatched": summary.total_unmatched,
                   "matched_by": dict(sorted(summary.matched_by.items()))},
        "versions": {"dermasynth": __version__, "python": platform.python_version()},
    })  # fmt: skip
    return summary
