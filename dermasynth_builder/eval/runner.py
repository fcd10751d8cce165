"""``run_eval``: plan the benchmark into an eval folder, answer it with the engine, score it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..options import GenerateOptions
from ..run import RunFolder
from .folder import BenchmarkOptions, EvalError, answered, plan_eval
from .report import write_report
from .score import score


def _check_same_model(folder: RunFolder, options: GenerateOptions) -> None:
    """Answers of two models must never be scored as one: a resume must use the same model."""
    info = folder.info()
    before = info.get("eval", {}).get("answered_by")
    now = {"backend": options.backend, "model": options.model}
    if before and before != now and (folder.finished_ids()):
        raise EvalError(
            f"{folder.path} holds answers of {before['backend']}/{before['model']}, not "
            f"{now['backend']}/{now['model']}: evaluate each model into its own --out"
        )
    info.setdefault("eval", {})["answered_by"] = now
    folder.write_info(info)


def run_eval(
    run: Path,
    out: Path,
    bench: BenchmarkOptions,
    options: GenerateOptions,
    on_progress: Callable[[Any], None] | None = None,
) -> dict[str, Any]:
    """The eval report (also written to OUT/eval.json and OUT/eval.md).

    Every question is its own call, so no question sees another's options; killed and rerun,
    only the unanswered questions are asked again.
    """
    from ..engine import Engine

    plan_eval(run, out, bench)
    folder = RunFolder(out)
    with folder.lock("eval"):
        _check_same_model(folder, options)
    options = options.model_copy(update={"one_question_per_request": True, "mode": "online"})
    with Engine(out, options, on_progress=on_progress) as engine:
        engine.run_sync()
    return score_folder(out)


def score_folder(out: Path) -> dict[str, Any]:
    """Score what the eval folder holds now and write eval.json, eval.md and the figures."""
    folder = RunFolder(out)
    info = folder.info()
    meta = info.get("eval", {})
    generation = info.get("generation", {})
    seed = int(meta.get("options", {}).get("seed", 0))
    scored = score(answered(folder), seed)
    report = {
        "run": meta.get("run"),
        "release": meta.get("release"),
        "backend": generation.get("backend", meta.get("answered_by", {}).get("backend")),
        "model": generation.get("model", meta.get("answered_by", {}).get("model")),
        "options": meta.get("options", {}),
        "images": meta.get("images", {}),
        "counts": generation.get("counts", {}),
        "off_form": sum(f.kind == "content" for f in folder.failures()),
        **scored,
    }
    write_report(Path(out), report)
    return report
