"""All steps in one go from a TOML config: plan, generate, curate, package; finished steps are
skipped, so the same command resumes an interrupted run."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .curate.config import CurateConfig
from .engine import GenerateOptions
from .runfolder import FAILURES, PAIRS, REQUESTS, RESPONSES, RUN_JSON, iter_jsonl
from .sources import SOURCES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class PlanSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seed: int = 0
    limit: int | None = Field(default=None, ge=1)
    recipe: str = "default"


class CurateSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    config: Path | None = None


class PackageSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    out: Path = Path("dermasynth")
    max_image_side: int = Field(default=1024, ge=0)
    test_fraction: float = Field(default=0.0, ge=0, le=0.9)
    num_proc: int | None = Field(default=None, ge=1)
    max_shard_size: str = "500MB"


class RunConfig(BaseModel):
    """The whole pipeline in one file (``dermasynth run CONFIG.toml``)."""

    model_config = ConfigDict(extra="forbid")
    run: Path = Path("dermasynth-run")
    sources: dict[str, Path]
    plan: PlanSection = PlanSection()
    generate: GenerateOptions = GenerateOptions()
    curate: CurateSection = CurateSection()
    package: PackageSection = PackageSection()

    @field_validator("sources")
    @classmethod
    def _known_sources(cls, value: dict[str, Path]) -> dict[str, Path]:
        unknown = set(value) - set(SOURCES)
        if unknown:
            raise ValueError(f"unknown source(s) {sorted(unknown)}; known: {', '.join(SOURCES)}")
        if not value:
            raise ValueError("give at least one source")
        return value

    @classmethod
    def load(cls, path: Path) -> RunConfig:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
        config = cls(**data)
        base = path.parent
        # relative paths in the file are relative to the file
        config.run = _resolve(base, config.run)
        config.sources = {k: _resolve(base, v) for k, v in config.sources.items()}
        config.package.out = _resolve(base, config.package.out)
        if config.curate.config is not None:
            config.curate.config = _resolve(base, config.curate.config)
        return config


def _resolve(base: Path, path: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else base / path


def _newer(a: Path, *others: Path) -> bool:
    """Is ``a`` there and newer than every existing one of ``others``?"""
    if not a.exists():
        return False
    mtime = a.stat().st_mtime
    return all(not o.exists() or o.stat().st_mtime <= mtime for o in others)


def plan_is_current(config: RunConfig) -> bool:
    path = config.run / RUN_JSON
    if not path.is_file() or not (config.run / REQUESTS).is_file():
        return False
    plan = json.loads(path.read_text()).get("plan", {})
    roots = {k: v.get("root") for k, v in plan.get("sources", {}).items()}
    wanted = {k: str(v.resolve()) for k, v in config.sources.items()}
    return (
        roots == wanted
        and plan.get("seed") == config.plan.seed
        and plan.get("limit") == config.plan.limit
        and plan.get("recipe") == config.plan.recipe
    )


def generation_is_complete(run: Path) -> bool:
    if not (run / REQUESTS).is_file():
        return False
    planned = {r["id"] for r in iter_jsonl(run / REQUESTS)}
    done = {r["id"] for name in (RESPONSES, FAILURES) for r in iter_jsonl(run / name)}
    return planned <= done


Step = tuple[str, Callable[[], bool], Callable[[], Any]]


def steps(config: RunConfig, hooks: dict[str, Callable[..., Any]]) -> list[Step]:
    """The four steps as (name, is_done, do) triples; ``hooks`` supplies each step's runner."""
    run = config.run
    curate_inputs = [run / RESPONSES, run / FAILURES]
    if config.curate.config:
        curate_inputs.append(config.curate.config)
    return [
        ("plan", lambda: plan_is_current(config), hooks["plan"]),
        ("generate", lambda: generation_is_complete(run), hooks["generate"]),
        ("curate", lambda: _newer(run / PAIRS, *curate_inputs), hooks["curate"]),
        (
            "package",
            lambda: _newer(config.package.out / "README.md", run / PAIRS),
            hooks["package"],
        ),
    ]


def run_pipeline(
    config: RunConfig,
    hooks: dict[str, Callable[..., Any]],
    report: Callable[[str, str, float], None],
) -> None:
    """Run every step that is not done yet, in order; ``report(step, status, seconds)``."""
    for name, is_done, do in steps(config, hooks):
        if is_done():
            report(name, "skipped (already done)", 0.0)
            continue
        started = time.monotonic()
        do()
        report(name, "done", time.monotonic() - started)


def curate_config(config: RunConfig) -> CurateConfig:
    return CurateConfig.load(config.curate.config)
