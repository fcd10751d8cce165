"""The benchmark: which labelled images it asks about, and the closed-form questions it asks.

Images are the official test images the plan left out (``heldout.jsonl``) plus the images the
release puts in its grouped test split, so a model fine-tuned on the release's ``train`` split
never saw them. Every choice (options, their order) is drawn from a generator seeded by
(seed, source, image_id, task): the same run and seed always give the same benchmark. The
gold answer lives in the item, never in the question: a question names every option or none.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..records import MALIGNANCY, SourceRecord
from ..release_folder import MARKER
from ..run import RunFolder

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
TASKS = ("diagnosis", "malignancy")
AGE_BANDS = ((0, 17, "0-17"), (18, 39, "18-39"), (40, 59, "40-59"), (60, 79, "60-79"))

DIAGNOSIS_QUESTION = (
    "Options: {options}. Which one of these diagnoses best fits the lesion or skin condition "
    "in this image? Reply with the letter of one option."
)
MALIGNANCY_QUESTION = (
    "Options: {options}. Is what this image shows benign, malignant, or indeterminate "
    "(premalignant or of uncertain behaviour)? Reply with the letter of one option."
)
OPEN_QUESTION = (
    "What is the most likely diagnosis of what this image shows, and is it benign or "
    "malignant? Answer in one or two sentences."
)


def _hash(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).hexdigest()


def _rng(*parts: object) -> random.Random:
    return random.Random(int(_hash(*parts)[:16], 16))


def age_band(age: int | None) -> str | None:
    if age is None:
        return None
    for low, high, name in AGE_BANDS:
        if low <= age <= high:
            return name
    return "80+"


@dataclass(slots=True)
class Item:
    """One benchmark question with its answer key (``key.jsonl``; never sent to a model)."""

    id: str
    source: str
    image_id: str
    task: str  # diagnosis | malignancy | open
    question: str
    options: list[str] = field(default_factory=list)  # empty for the open question
    gold: str | None = None  # the label (diagnosis or malignancy)
    origin: str = "heldout"  # heldout | release_test
    diagnosis: str | None = None
    malignancy: str | None = None
    fitzpatrick: str | None = None
    sex: str | None = None
    age_band: str | None = None

    @property
    def gold_index(self) -> int | None:
        return self.options.index(self.gold) if self.gold in self.options else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Item:
        return cls(**data)


def in_release_test(record: SourceRecord, test_fraction: float, split_seed: int) -> bool:
    """Whether ``package --test-fraction`` puts this record's image in the release's test split
    (the builder's own group-aware rule, so the two never disagree)."""
    if record.split == "test":
        return True
    if test_fraction <= 0:
        return False
    from ..release import builder_module

    return bool(
        builder_module().in_test(
            record.source, record.group_id, record.image_id, test_fraction, split_seed
        )
    )


def packaged_release(folder: RunFolder) -> Path | None:
    """The release ``package`` last wrote from this run, if it is still there and still its."""
    out = (folder.info().get("steps", {}).get("package") or {}).get("out")
    if not out:
        return None
    marker = Path(out) / MARKER
    try:
        made_from = json.loads(marker.read_text(encoding="utf-8")).get("run")
    except (OSError, ValueError):
        return None
    return Path(out) if made_from == str(folder.path.resolve()) else None


def release_test_images(release: Path) -> set[tuple[str, str]]:
    """(source, image_id) of every row of a release's test split, read from its Parquet files
    (two columns only; the images are not read)."""
    import pyarrow.parquet as pq

    found: set[tuple[str, str]] = set()
    for path in sorted(Path(release).glob("data/*/test-*.parquet")):
        table = pq.read_table(path, columns=["source", "image_id"])
        found.update(zip(table["source"].to_pylist(), table["image_id"].to_pylist(), strict=True))
    return found


def benchmark_records(
    folder: RunFolder,
    *,
    test_fraction: float = 0.0,
    split_seed: int = 0,
    limit: int | None = None,
    seed: int = 0,
    release_test: set[tuple[str, str]] | None = None,
) -> list[tuple[SourceRecord, str]]:
    """(record, origin) of every labelled benchmark image, sorted: the held-out official test
    images, then the release's test split (``release_test``, as read from the release, or the
    images ``--test-fraction`` would put there). ``limit`` keeps a seeded subset per source that
    stays stable when other images come and go."""
    chosen: dict[tuple[str, str], tuple[SourceRecord, str]] = {}
    for record in folder.heldout():
        chosen[(record.source, record.image_id)] = (record, "heldout")
    for record in folder.records():
        key = (record.source, record.image_id)
        if key in chosen:
            continue
        if (release_test is not None and key in release_test) or in_release_test(
            record, test_fraction, split_seed
        ):
            chosen[key] = (record, "release_test")
    out = [v for v in chosen.values() if v[0].diagnosis or v[0].malignancy]
    if limit is not None:
        by_source: dict[str, list[tuple[SourceRecord, str]]] = {}
        for entry in out:
            by_source.setdefault(entry[0].source, []).append(entry)
        out = []
        for entries in by_source.values():
            entries.sort(key=lambda e: _hash(seed, e[0].source, e[0].image_id))
            out.extend(entries[:limit])
    return sorted(out, key=lambda e: (e[0].source, e[0].image_id))


def label_spaces(folder: RunFolder) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Per source: the sorted diagnoses and the malignancy classes its records use."""
    diagnoses: dict[str, set[str]] = {}
    malignancy: dict[str, set[str]] = {}
    for reader in (folder.records, folder.heldout):
        for record in reader():
            if record.diagnosis:
                diagnoses.setdefault(record.source, set()).add(record.diagnosis)
            if record.malignancy:
                malignancy.setdefault(record.source, set()).add(record.malignancy)
    mal = {}
    for source, seen in malignancy.items():
        classes = ["benign", "malignant"] + (["indeterminate"] if "indeterminate" in seen else [])
        mal[source] = [m for m in MALIGNANCY if m in classes]
    return {s: sorted(v) for s, v in diagnoses.items()}, mal


def lettered(options: list[str]) -> str:
    return "; ".join(f"({LETTERS[i]}) {o}" for i, o in enumerate(options))


def items_for(
    record: SourceRecord,
    origin: str,
    diagnoses: list[str],
    malignancy: list[str],
    *,
    seed: int,
    n_options: int,
    open_question: bool,
) -> list[Item]:
    """The questions about one image: diagnosis (when it has a label and its source at least
    two), malignancy (when defined), and optionally the open question."""
    common = {
        "source": record.source,
        "image_id": record.image_id,
        "origin": origin,
        "diagnosis": record.diagnosis,
        "malignancy": record.malignancy,
        "fitzpatrick": record.fitzpatrick_skin_type,
        "sex": record.sex,
        "age_band": age_band(record.age),
    }
    items = []
    if record.diagnosis and len(diagnoses) >= 2:
        rng = _rng(seed, record.source, record.image_id, "diagnosis")
        others = [d for d in diagnoses if d != record.diagnosis]
        k = len(diagnoses) if n_options <= 0 else min(n_options, len(diagnoses))
        options = [record.diagnosis, *rng.sample(others, k - 1)]
        rng.shuffle(options)
        question = DIAGNOSIS_QUESTION.format(options=lettered(options))
        items.append(
            Item(
                "",
                task="diagnosis",
                question=question,
                options=options,
                gold=record.diagnosis,
                **common,
            )
        )
    if record.malignancy and record.malignancy in malignancy:
        rng = _rng(seed, record.source, record.image_id, "malignancy")
        options = list(malignancy)
        rng.shuffle(options)
        question = MALIGNANCY_QUESTION.format(options=lettered(options))
        items.append(
            Item(
                "",
                task="malignancy",
                question=question,
                options=options,
                gold=record.malignancy,
                **common,
            )
        )
    if open_question and (record.diagnosis or record.malignancy):
        items.append(Item("", task="open", question=OPEN_QUESTION, **common))
    for item in items:
        item.id = _hash(seed, item.source, item.image_id, item.task, item.question)[:20]
    return items
