"""Reading the file: JSON, JSON Lines, Parquet or CSV, unwrapped into flat records.

Also the field-name vocabulary the records are searched with (``pairs`` uses it too).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Dataset names (the original's bank keys, squashed to [a-z0-9]) -> our source names; strict
# enough that an image id such as BCN_0000019003 is never taken for one.
DATASETS = ((r"derm12345[a-z]*", "derm12345"), (r"bcn(20000|20k)?[a-z]*", "bcn20000"),
            (r"padufes(20)?[a-z]*", "pad_ufes_20"), (r"scin[a-z]*", "scin"),
            (r"hiba[a-z]*", "hiba"))  # fmt: skip
ID_KEYS = ("image_id", "imageid", "img_id", "image_name", "img_name", "isic_id", "file_name",
           "filename", "image_file", "img_file", "image", "img", "file", "id")  # fmt: skip
PATH_KEYS = ("image_path", "img_path", "file_path", "filepath", "path", "image_url", "url")
SOURCE_KEYS = ("source", "dataset", "dataset_name", "source_dataset", "data_source", "subset",
               "origin", "collection", "database")  # fmt: skip
MODEL_KEYS = ("model", "model_name", "model_id", "generator", "teacher_model", "llm")
QUESTION_WORDS = ("question", "instruction", "query", "prompt", "input")
ANSWER_WORDS = ("answer", "response", "output", "completion", "reply")
CAPTION_WORDS = ("caption", "description")
CONVERSATION_KEYS = ("conversations", "conversation", "messages")


class ImportInputError(Exception):
    """The file cannot be read as pairs at all, or RUN holds something else (exit 2)."""


def norm(key: str) -> str:
    """Key spelling-insensitive: "Q1-General Response" and "q1_general_response" are one key."""
    return re.sub(r"[^a-z0-9]+", "_", str(key).lower()).strip("_")


def dataset_source(name: Any) -> str | None:
    """Our source name for a dataset name ("pad-ufes-20", "scin_clinical", ...), else None."""
    squashed = re.sub(r"[^a-z0-9]", "", str(name).lower())
    return next((src for pattern, src in DATASETS if re.fullmatch(pattern, squashed)), None)


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
                if isinstance(data, dict):
                    shape = f"top-level keys: {', '.join(sorted(map(str, data))) or 'none'}"
                elif isinstance(data, list) and data and isinstance(data[0], dict):
                    shape = f"keys of the first item: {', '.join(sorted(map(str, data[0])))}"
                else:
                    shape = f"a JSON {type(data).__name__}"
                raise ImportInputError(
                    f"{path}: no question/answer records found ({shape}); see the README's "
                    "import-original section for the layouts read"
                )
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
