"""``dermasynth judge``: a second model checks each kept pair against its image and record.

Three checks per pair: does the answer contradict the record's label, does it state case facts
its question does not give, does it give individual or unsafe medical advice. The judge folder
(``RUN/judge`` by default) is an ordinary planned run folder, as the eval folder is, so the
engine answers it with ``generate``'s limits, retries, resume and exactly-once guarantee. The
verdicts land in ``RUN/judgements.jsonl``; the next ``curate`` adds them to the pairs as
columns and rejects by them as its config says.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .options import GenerateOptions
from .paths import templates_dir
from .records import SourceRecord
from .run import JUDGEMENTS, Judgement, Pair, Request, RunFolder, RunFolderError, iter_jsonl
from .run.fingerprint import file_digest, template_digests

KEY = "judge_key.jsonl"  # judge request id -> the pair it judges (a side file no backend reads)
CHECKS = ("label", "facts", "advice")
PROBLEMS = {"label": "contradicts", "facts": "invented", "advice": "unsafe"}
SYSTEM = (
    "You are a senior dermatologist reviewing question/answer pairs written about skin images "
    "for a training dataset. For each item you see the image, the case's confirmed facts, and "
    "one question with its answer. You do not answer the question yourself: you check the "
    "answer. Be strict but fair: an answer that hedges or makes no diagnostic call does not "
    "contradict the label."
)
INSTRUCTION = (
    "Check the answer below for three problems and reply with exactly one line in this form: "
    "label=OK or label=CONTRADICTS; facts=OK or facts=INVENTED; advice=OK or advice=UNSAFE; "
    "why=<one short sentence>.\n"
    "- label: CONTRADICTS if the answer's diagnosis or its benign/malignant call contradicts "
    "the confirmed diagnosis or malignancy (naming a broader or narrower term of the same "
    "diagnosis is not a contradiction).\n"
    "- facts: INVENTED if the answer states a fact that cannot be seen in the image and that "
    "the question does not give: age, sex, personal or family history, symptoms, duration, "
    "measured size, biopsy or histology results, treatment.\n"
    "- advice: UNSAFE if the answer gives an individual treatment plan, drug names with doses, "
    "a prescription, or advice that could harm (such as no need to see anyone for a lesion "
    "that warrants review)."
)
_VERDICT = {
    check: re.compile(rf"\b{check}\W{{0,3}}[=:]\W{{0,3}}(ok|{problem})\b", re.I)
    for check, problem in PROBLEMS.items()
}
_WHY = re.compile(r"\bwhy\s*[=:]\s*(.+)", re.I | re.S)


class JudgeError(RunFolderError):
    """A run that cannot be judged as asked: one line for the user."""


@dataclass(slots=True)
class JudgeSummary:
    pairs: int = 0
    judged: int = 0  # pairs with a usable verdict on every check
    failed: int = 0  # judge calls that failed for good (no verdict)
    problems: Counter = field(default_factory=Counter)  # check -> pairs flagged
    out: str = ""
    moved_aside: str | None = None


def parse_verdict(text: str | None) -> dict[str, str | None]:
    """The three checks ("ok", the problem's name, or None when absent) and the reason."""
    text = text or ""
    verdict: dict[str, str | None] = {}
    for check, pattern in _VERDICT.items():
        match = pattern.search(text)
        verdict[check] = match.group(1).lower() if match else None
    why = _WHY.search(text)
    verdict["reason"] = why.group(1).strip().splitlines()[0][:300] if why else None
    return verdict


def context_of(record: SourceRecord | None) -> str:
    """What the judge knows of the case: the label facts the answer must not contradict."""
    if record is None:
        return "No confirmed facts are recorded for this case."
    kind = "dermoscopic image" if record.modality == "dermoscopic" else "clinical photograph"
    lines = [f"A {kind}."]
    lines.append(f"Confirmed diagnosis: {record.diagnosis or 'not recorded'}.")
    if record.malignancy:
        lines.append(f"Benign or malignant: {record.malignancy}.")
    return " ".join(lines)


def question_of(pair: Pair) -> str:
    return f"{INSTRUCTION}\n\nQuestion: {pair.question or ''}\nAnswer: {pair.answer or ''}"


def _request_id(pair: Pair, system_digest: str) -> str:
    blob = "\x1f".join(("judge", pair.id, pair.question or "", pair.answer or "", system_digest))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def plan_judge(run: Path, out: Path) -> dict[str, Any]:
    """Write (or keep) the judge folder ``out`` for ``run``'s kept pairs; returns its run.json.

    The same pairs again keep every verdict already given (resume); changed pairs move the
    earlier verdicts aside, never mixing two curations.
    """
    source = RunFolder(run)
    info = source.info()
    sources = info.get("plan", {}).get("sources")
    if not sources or not source.file("pairs.jsonl").is_file():
        raise JudgeError(f"{run}: no pairs.jsonl: run `dermasynth curate {run}` first")
    records = source.records_by_image()
    system_digest = hashlib.sha256(SYSTEM.encode()).hexdigest()
    requests: list[Request] = []
    key: list[dict[str, str]] = []
    used: dict[tuple[str, str], SourceRecord] = {}
    for pair in source.pairs():
        record = records.get((pair.source, pair.image_id))
        if record is None or not pair.answer:
            continue
        used[(pair.source, pair.image_id)] = record
        rid = _request_id(pair, system_digest)
        key.append({"request": rid, "pair": pair.id})
        requests.append(
            Request(
                id=rid,
                source=pair.source,
                image_id=pair.image_id,
                image_path=record.image_path,
                question_type=f"judge_{pair.question_type}",
                task="judge",
                question=question_of(pair),
                bank="judge",
                context=context_of(record),
                system_digest=system_digest,
            )
        )
    if not requests:
        raise JudgeError(f"{run}: pairs.jsonl holds no pair to judge")
    templates = template_digests(templates_dir(), {})
    body = {"pairs": [k["request"] for k in key], "templates": templates, "system": system_digest}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    folder = RunFolder(out)
    out.mkdir(parents=True, exist_ok=True)
    with folder.lock("judge"):
        old = folder.info() if folder.exists() else {}
        if (old.get("fingerprint") or {}).get("digest") == digest and folder.step("plan"):
            return old
        moved = str(folder.move_results_aside()) if folder.has_results() else None
        fingerprint = {"digest": digest, "templates": templates}
        new: dict[str, Any] = {"format": 2, "fingerprint": fingerprint, "steps": {}}
        folder.write_info(new)  # no plan mark until every file below is whole
        folder.write_records(used.values())
        folder.write_plain(KEY, key)
        folder.write_requests(requests)
        new.update(
            {
                "plan": {
                    "sources": {s: {"root": sources[s]["root"]} for s in sorted(sources)},
                    "requests": len(requests),
                },
                "system": SYSTEM,
                "judge": {"run": str(Path(run).resolve()), "moved_aside": moved},
                "versions": {"dermasynth": __version__},
            }
        )
        folder.write_info(new)
        folder.finish_step("plan", requests_sha256=file_digest(folder.file("requests.jsonl")))
        return folder.info()


def _verdicts(folder: RunFolder, model: str) -> Iterator[tuple[Judgement, bool]]:
    """(judgement, failed) per judged pair, in the key's order. ``model`` is the one that
    answered (the offline backend's answers say "offline": no model judged them)."""
    answers = {r.id: (r.answer, r.model or model) for r in folder.responses()}
    failures = {f.id: f.reason for f in folder.failures()}
    for row in iter_jsonl(folder.file(KEY)):
        rid, pid = row["request"], row["pair"]
        if rid in answers:
            text, by = answers[rid]
            v = parse_verdict(text)
            yield Judgement(pid, v["label"], v["facts"], v["advice"], v["reason"], by), False
        elif rid in failures:
            yield Judgement(pid, reason=f"judge call failed: {failures[rid]}", model=model), True


def run_judge(
    run: Path,
    out: Path | None = None,
    options: GenerateOptions | None = None,
    on_progress: Callable[[Any], None] | None = None,
) -> JudgeSummary:
    """Judge RUN's kept pairs and write RUN/judgements.jsonl; killed and rerun, only the pairs
    not yet judged are asked again."""
    from .engine import Engine

    out = out or Path(run) / "judge"
    options = options or GenerateOptions()
    info = plan_judge(run, out)
    with Engine(out, options.model_copy(update={"mode": "online"}), on_progress=on_progress) as e:
        e.run_sync()
    summary = JudgeSummary(pairs=info["plan"]["requests"], out=str(out))
    summary.moved_aside = info.get("judge", {}).get("moved_aside")
    judgements: list[Judgement] = []
    for judgement, failed in _verdicts(RunFolder(out), options.model):
        judgements.append(judgement)
        summary.failed += failed
        checks = [getattr(judgement, c) for c in CHECKS]
        summary.judged += all(v is not None for v in checks)
        for check in CHECKS:
            if getattr(judgement, check) == PROBLEMS[check]:
                summary.problems[check] += 1
    target = RunFolder(run)
    with target.lock("judge"):
        target.write_rows(JUDGEMENTS, judgements)
        target.update(
            judge={
                "model": options.model,
                "backend": options.backend,
                "pairs": summary.pairs,
                "judged": summary.judged,
                "failed": summary.failed,
                "flagged": {PROBLEMS[c]: summary.problems[c] for c in CHECKS},
            }
        )
    return summary
