"""Matching each pair to its image in the given sources, and writing the run folder."""

from __future__ import annotations

import hashlib
import os
import platform
import posixpath
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..records import SourceRecord
from ..run import RESPONSES, Request, Response, RunFolder
from ..run.fingerprint import file_digest
from ..sources import ReadResult, get_source
from .pairs import Candidate, extract
from .read import ImportInputError, dataset_source, load

UNMATCHED = "unmatched.jsonl"
NOT_GIVEN, NO_IMAGE, BAD_RECORD, DUPLICATE = (
    "source not given", "no image with this id", "bad record", "duplicate pair",
)  # fmt: skip
AMBIGUOUS_CASE = "case id names several images"
Reader = Callable[[str, Path], ReadResult]
ID_PATTERNS = ((r"derm_", "derm12345"), (r"bcn_", "bcn20000"), (r"pat_\d", "pad_ufes_20"),
               (r"-?\d{6,}$", "scin"))  # fmt: skip
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")


def infer_source(image_id: str) -> str | None:
    """The source an id's spelling suggests; only used to explain an unmatched pair."""
    return next((s for p, s in ID_PATTERNS if re.match(p, image_id.lower())), None)


def names(value: str) -> list[str]:
    """Lower-cased spellings an image can be named by: as given, file name, file name stem."""
    base = posixpath.basename(value.replace("\\", "/"))
    stem = base.rsplit(".", 1)[0] if base.lower().endswith(IMAGE_SUFFIXES) else base
    return list(dict.fromkeys([value.lower(), base.lower(), stem.lower()]))


class ImageIndex:
    """Each given source's records by id, file name and path; SCIN also by case id (last).

    A SCIN case holds up to three images: a case id matches only a case of one image, since
    which image a case's text describes cannot be known (`find` says so instead of guessing)."""

    def __init__(self, results: dict[str, list[SourceRecord]]):
        self.keys: dict[str, dict[str, SourceRecord]] = {}
        self.cases: dict[str, dict[str, list[SourceRecord]]] = {}
        for name, records in results.items():
            keys, cases = self.keys.setdefault(name, {}), self.cases.setdefault(name, {})
            for r in records:
                for key in [r.image_id.lower(), *names(r.image_path)]:
                    keys.setdefault(key, r)
                if r.extra.get("case_id"):
                    cases.setdefault(str(r.extra["case_id"]).lower(), []).append(r)

    def find(self, c: Candidate, sources: list[str]) -> tuple[SourceRecord | None, str] | None:
        """(record, how it matched), (None, why not) for an ambiguous case id, or None."""
        tries = [(k, "file name") for k in (names(c.image_id) if c.image_id else [])]
        tries += [(k, "image path") for k in (names(c.image_path) if c.image_path else [])]
        for key, how in tries:
            for source in sources:
                hit = self.keys[source].get(key)
                if hit is not None:
                    exact = how != "image path" and key == hit.image_id.lower()
                    return hit, "image id" if exact else how
        for key, _ in tries:
            for source in sources:
                case = self.cases[source].get(key)
                if case:
                    return (case[0], "case id") if len(case) == 1 else (None, AMBIGUOUS_CASE)
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
    if hit is not None and hit[0] is None:
        return None, hit[1], named or guess
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
    moved_aside: Path | None = None  # an earlier import's results, kept there

    @property
    def total_matched(self) -> int:
        return sum(self.matched.values())

    @property
    def total_unmatched(self) -> int:
        return sum(self.unmatched.values())


sha256_file = file_digest  # the importer's name for it


def import_pairs(
    file: Path, sources: list[tuple[str, Path]], run: Path, reader: Reader | None = None
) -> ImportSummary:
    """Write run.json, records, skipped, requests, responses and unmatched.jsonl for ``file``."""
    summary = ImportSummary(run)
    digest = sha256_file(file)
    loaded = load(file)  # a file of the wrong shape fails here, before the folder is touched
    summary.format = loaded.format
    found = extract(loaded, summary.layouts)
    folder = RunFolder(run)
    if folder.exists() and "import" not in folder.info():
        raise ImportInputError(f"{run} holds a planned run; import into a new folder")
    with folder.lock("import-original"):
        return _import(folder, file, digest, loaded.format, found, summary, sources, reader)


def _import(
    folder: RunFolder,
    file: Path,
    digest: str,
    file_format: str,
    found: list[Candidate],
    summary: ImportSummary,
    sources: list[tuple[str, Path]],
    reader: Reader | None,
) -> ImportSummary:
    run = folder.path
    read = reader or (lambda name, root: get_source(name).read(root))
    results = {name: read(name, root) for name, root in sources}
    summary.read = {name: len(r.records) for name, r in results.items()}
    index = ImageIndex({name: r.records for name, r in results.items()})
    given = [name for name, _ in sources]
    requests: list[Request] = []
    responses: list[Response] = []
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
        request = Request(id=rid, source=source, image_id=record.image_id,
                          image_path=record.image_path, slot=slot, bank=c.bank,
                          question_type=c.question_type, task=c.task,
                          self_instruct=c.question is not None,
                          question=c.instruction or "")  # fmt: skip
        requests.append(request)
        responses.append(Response(id=rid, source=source, image_id=record.image_id,
                                  question_type=c.question_type, bank=c.bank, task=c.task,
                                  self_instruct=c.question is not None,
                                  instruction=request.question, question=shown,
                                  answer=c.answer, model=c.model, backend="import",
                                  call_id=rid))  # fmt: skip
    run.mkdir(parents=True, exist_ok=True)
    records = [r for name in given for r in results[name].records if (name, r.image_id) in used]
    summary.images.update(r.source for r in records)
    if folder.exists():  # an earlier import into this folder: its results go aside, not lost
        if folder.has_results():
            summary.moved_aside = folder.move_results_aside()
        folder.write_info({"import": {}})  # no step marks until the files below are whole
    folder.write_records(records)
    skipped = ({"source": name, **s.to_dict()} for name in given for s in results[name].skipped)
    folder.write_skipped(skipped)
    folder.write_requests(requests)
    folder.write_rows(RESPONSES, responses)
    folder.write_plain(UNMATCHED, unmatched)
    roots = {name: str(Path(root).expanduser().resolve()) for name, root in sources}
    fingerprint = {"digest": f"import-{digest[:16]}", "import": digest,
                   "sources": {name: {"root": root} for name, root in roots.items()}}  # fmt: skip
    folder.write_info({
        "format": 2,
        "fingerprint": fingerprint,
        "plan": {"seed": None, "limit": None, "recipe": "imported", "requests": len(requests),
                 "sources": {name: {"root": roots[name], "read": summary.read[name],
                                    "records": summary.images[name],
                                    "skipped": len(results[name].skipped)}
                             for name, _ in sources}},
        "templates": {"version": f"imported-{digest[:12]}", "digests": {}},
        "import": {"file": os.path.abspath(file), "sha256": digest, "format": file_format,
                   "pairs": summary.pairs, "matched": summary.total_matched,
                   "unmatched": summary.total_unmatched,
                   "matched_by": dict(sorted(summary.matched_by.items()))},
        "versions": {"dermasynth": __version__, "python": platform.python_version()},
    })  # fmt: skip
    folder.finish_step("plan", requests_sha256=file_digest(folder.file("requests.jsonl")))
    folder.finish_step("generate", responses=len(responses), failures=0)
    return summary
