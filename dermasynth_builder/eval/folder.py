"""The eval folder is a planned run folder: the engine answers it like any plan.

Its ``requests.jsonl`` holds the benchmark questions, ``run.json`` its own system instruction,
and ``records.jsonl`` the images' records stripped of every label (the offline backend reads
records, and must see no more than a real model). The answer key, ``key.jsonl``, is a side
file no backend reads. Because it is an ordinary plan, ``generate``'s limits, retries, resume
and exactly-once guarantee hold for eval unchanged.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..paths import templates_dir
from ..records import SourceRecord
from ..release_folder import MARKER
from ..run import Request, RunFolder, RunFolderError, iter_jsonl
from ..run.fingerprint import file_digest, template_digests
from .bench import (
    Item,
    benchmark_records,
    items_for,
    label_spaces,
    packaged_release,
    release_test_images,
)

KEY = "key.jsonl"
SYSTEM = (
    "You are a board-certified dermatologist taking a written examination. Each item shows one "
    "image of skin. Judge only from what is visible in the image. For a multiple-choice item, "
    "answer with the letter of exactly one option and nothing else. For an open item, answer "
    "briefly in plain prose."
)
QUESTION_TYPES = {
    "diagnosis": "eval_diagnosis",
    "malignancy": "eval_malignancy",
    "open": "eval_open",
}


class EvalError(RunFolderError):
    """A benchmark that cannot be built or resumed as asked: one line for the user."""


@dataclass(frozen=True, slots=True)
class BenchmarkOptions:
    """What defines a benchmark (its fingerprint): same options, same questions."""

    seed: int = 0
    n_options: int = 5
    test_fraction: float = 0.0
    split_seed: int = 0
    limit: int | None = None
    open_question: bool = False
    # a release folder whose test split joins the benchmark; None: the release `package` last
    # wrote from the run, if it is still there ("" for none at all)
    release: str | None = None


def context_of(record: SourceRecord) -> str:
    """The only case information an eval prompt carries: the kind of image (no label)."""
    kind = "dermoscopic image" if record.modality == "dermoscopic" else "clinical photograph"
    return f"A {kind}. No other information about the patient or the lesion is given."


def label_free(record: SourceRecord) -> SourceRecord:
    """The record with every label, label-like and demographic field dropped."""
    return SourceRecord(
        source=record.source,
        image_id=record.image_id,
        image_path=record.image_path,
        modality=record.modality,
        license=record.license,
        attribution=record.attribution,
    )


def resolve_release(run: RunFolder, release: str | None) -> Path | None:
    """The release whose test split joins the benchmark (see ``BenchmarkOptions.release``)."""
    if release is None:
        return packaged_release(run)
    if not release:
        return None
    path = Path(release).resolve()
    if not (path / MARKER).is_file():
        raise EvalError(
            f"--release {release}: not a release folder (`dermasynth package` writes one)"
        )
    return path


def read_key(folder: RunFolder) -> list[Item]:
    return [Item.from_dict(row) for row in iter_jsonl(folder.file(KEY))]


def plan_eval(run: Path, out: Path, options: BenchmarkOptions) -> dict[str, Any]:
    """Write (or keep) the eval folder ``out`` for ``run``'s benchmark; returns its run.json.

    The same run and options again keep every answer already given (resume). Other options
    over a folder that holds answers is an error, never a silent mix of two benchmarks.
    """
    source_run = RunFolder(run)
    info = source_run.info()
    sources = info.get("plan", {}).get("sources")
    if not sources:
        raise EvalError(f"{run}: not a planned run folder (run `dermasynth plan` first)")
    diagnoses, malignancy = label_spaces(source_run)
    release = resolve_release(source_run, options.release)
    chosen = benchmark_records(
        source_run,
        test_fraction=options.test_fraction,
        split_seed=options.split_seed,
        limit=options.limit,
        seed=options.seed,
        release_test=release_test_images(release) if release else None,
    )
    items: list[Item] = []
    records: list[SourceRecord] = []
    requests: list[Request] = []
    system_digest = hashlib.sha256(SYSTEM.encode()).hexdigest()
    for record, origin in chosen:
        mine = items_for(
            record,
            origin,
            diagnoses.get(record.source, []),
            malignancy.get(record.source, []),
            seed=options.seed,
            n_options=options.n_options,
            open_question=options.open_question,
        )
        if not mine:
            continue
        items.extend(mine)
        records.append(label_free(record))
        for item in mine:
            requests.append(
                Request(
                    id=item.id,
                    source=record.source,
                    image_id=record.image_id,
                    image_path=record.image_path,
                    question_type=QUESTION_TYPES[item.task],
                    task=item.task,
                    question=item.question,
                    bank="eval",
                    context=context_of(record),
                    system_digest=system_digest,
                )
            )
    if not items:
        raise EvalError(
            f"{run}: no labelled held-out images (no labelled official test images in "
            "heldout.jsonl, no release test split, --test-fraction 0): nothing to evaluate"
        )
    body = {
        "run": str(Path(run).resolve()),
        "options": asdict(options),
        "release": str(release) if release else None,
        "requests": [r.id for r in requests],
        "templates": template_digests(templates_dir(), {}),
        "system": system_digest,
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    folder = RunFolder(out)
    out.mkdir(parents=True, exist_ok=True)
    with folder.lock("eval"):
        old = folder.info() if folder.exists() else {}
        if (old.get("fingerprint") or {}).get("digest") == digest and folder.step("plan"):
            return old
        if old and folder.has_results():
            raise EvalError(
                f"{out} holds answers to another benchmark (other run or options); "
                "evaluate into a new --out"
            )
        fingerprint = {"digest": digest, "templates": body["templates"]}
        new = {"format": 2, "fingerprint": fingerprint, "steps": {}}
        folder.write_info(new)  # no plan mark until every file below is whole
        folder.write_records(records)
        folder.write_plain(KEY, (i.to_dict() for i in items))
        folder.write_requests(requests)
        counts = Counter((i.source, i.task) for i in items)
        used = {r.source for r in records}
        new.update(
            {
                "plan": {
                    "seed": options.seed,
                    "sources": {s: {"root": sources[s]["root"]} for s in sorted(used)},
                    "requests": len(requests),
                },
                "system": SYSTEM,
                "eval": {
                    "run": body["run"],
                    "release": body["release"],
                    "options": body["options"],
                    "images": {
                        "heldout": sum(1 for _, o in chosen if o == "heldout"),
                        "release_test": sum(1 for _, o in chosen if o == "release_test"),
                    },
                    "items": {f"{s}/{t}": n for (s, t), n in sorted(counts.items())},
                },
                "versions": {"dermasynth": __version__},
            }
        )
        folder.write_info(new)
        folder.finish_step("plan", requests_sha256=file_digest(folder.file("requests.jsonl")))
        return folder.info()


def answered(folder: RunFolder) -> Iterator[tuple[Item, str | None, str | None]]:
    """(item, answer text or None, failure kind or None) for every item of the key. A
    ``content`` failure is a model that answered but never in the requested form."""
    responses = {r.id: r.answer for r in folder.responses()}
    failed = {f.id: f.kind for f in folder.failures()}
    for item in read_key(folder):
        yield item, responses.get(item.id), failed.get(item.id)
