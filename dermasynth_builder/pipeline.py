"""All steps in one go from a TOML config: plan, generate, curate, package; finished steps are
skipped, so the same command resumes an interrupted run."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .curate.config import CurateConfig
from .options import GenerateOptions
from .run import RunFolder
from .sources.registry import SOURCE_NAMES, unknown_source

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class PlanSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seed: int = 0
    limit: int | None = Field(default=None, ge=1)
    recipe: str = "default"
    # plan the sources' official test images too (default: left out, kept for eval)
    include_official_test: bool = False
    # results of another plan in the run folder are moved aside instead of refusing
    fresh: bool = False


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

    @field_validator("max_shard_size")
    @classmethod
    def _size(cls, value: str) -> str:
        from .release import check_shard_size

        return str(check_shard_size(value))


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
        unknown = sorted(set(value) - set(SOURCE_NAMES))
        if unknown:
            raise ValueError("; ".join(unknown_source(name) for name in unknown))
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


def config_problems(config: RunConfig) -> list[str]:
    """What would stop the run later, found before any work and said in the config's own words
    (TOML keys, not CLI flags): sources that are not folders, the backend, its mode, its key."""
    import os

    from .backends import BackendConfigError, backend_class

    problems = [
        f"[sources] {name} = {str(root)!r}: no such folder"
        for name, root in config.sources.items()
        if not root.is_dir()
    ]
    g = config.generate
    try:
        cls = backend_class(g.backend)
    except BackendConfigError as exc:
        return [*problems, f"[generate] backend = {g.backend!r}: {exc}"]
    if g.mode == "batch" and not cls.supports_batch:
        problems.append(
            f'[generate] mode = "batch" is not available with backend = {g.backend!r}; '
            'use mode = "online" or backend = "gemini"'
        )
    if cls.needs_key and not any(os.environ.get(k) for k in cls.key_env):
        problems.append(
            f"[generate] backend = {g.backend!r} needs an API key: set "
            + " or ".join(cls.key_env)
            + ' in the environment (or use backend = "offline" for a dry run)'
        )
    if cls.needs_model and not g.model:
        problems.append(f'[generate] backend = {g.backend!r} needs model = "..."')
    return problems + _pricing_problems(g)


def _pricing_problems(g: GenerateOptions) -> list[str]:
    """The price file and the model's settings, in the config's words."""
    from .pricing import SettingsError, load_profiles, resolve_settings

    if g.prices is not None and not g.prices.is_file():
        return [f"[generate] prices = {str(g.prices)!r}: no such file"]
    try:
        profiles = load_profiles(g.prices)
        resolve_settings(profiles, g.model, g.media_resolution, g.thinking, g.max_image_side)
    except SettingsError as exc:  # also a price file that is not a price table
        message = str(exc)
        for flag, key in (("--media-resolution", "media_resolution"), ("--thinking", "thinking")):
            message = message.replace(flag, key)
        return [f"[generate] {message.replace('--prices ', 'prices = ')}"]
    return []


def config_warnings(config: RunConfig) -> list[str]:
    """What the run can go on with but the user should know before it starts."""
    from .backends import BackendConfigError, backend_class
    from .pricing import SettingsError, load_profiles

    g = config.generate
    try:
        if backend_class(g.backend).needs_model:  # a server's own model: no price list
            return []
    except BackendConfigError:
        return []
    try:
        known = load_profiles(g.prices).find(g.model) is not None
    except SettingsError:  # config_problems reports an unreadable price file
        return []
    if known:
        return []
    return [
        f"[generate] model = {g.model!r} has no profile: its cost reads unknown "
        "(add it with prices = FILE)"
    ]


def _resolve(base: Path, path: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else base / path


def plan_is_current(config: RunConfig) -> bool:
    """Is the folder's plan finished and made from exactly these inputs? (Roots compare
    resolved, so a symlinked root is the same plan; template edits make it stale.)"""
    from .plan import current_fingerprint

    folder = RunFolder(config.run)
    if folder.step("plan") is None:
        return False
    wanted = current_fingerprint(
        list(config.sources.items()),
        seed=config.plan.seed,
        limit=config.plan.limit,
        recipe=config.plan.recipe,
        include_official_test=config.plan.include_official_test,
    )
    return (folder.fingerprint() or {}).get("digest") == wanted["digest"]


def _current(folder: RunFolder, step: str) -> dict[str, Any] | None:
    """The step's completion mark when it was made from the folder's current plan."""
    mark = folder.step(step)
    if mark is None or mark.get("plan") != (folder.fingerprint() or {}).get("digest"):
        return None
    return mark


def curation_is_current(config: RunConfig) -> bool:
    from .curate import config_digest

    folder = RunFolder(config.run)
    mark = _current(folder, "curate")
    return (
        mark is not None
        and mark.get("config") == config_digest(curate_config(config))
        and mark.get("results") == folder.results_state()
    )


def release_is_current(config: RunConfig) -> bool:
    folder = RunFolder(config.run)
    mark, curated = _current(folder, "package"), folder.step("curate")
    return (
        mark is not None
        and curated is not None
        and mark.get("pairs") == curated.get("pairs")
        and mark.get("out") == str(config.package.out.resolve())
        and (config.package.out / "README.md").is_file()
    )


Step = tuple[str, Callable[[], bool], Callable[[], Any]]


def steps(config: RunConfig, hooks: dict[str, Callable[..., Any]]) -> list[Step]:
    """The four steps as (name, is_done, do) triples; ``hooks`` supplies each step's runner."""
    folder = RunFolder(config.run)
    return [
        ("plan", lambda: plan_is_current(config), hooks["plan"]),
        ("generate", lambda: _current(folder, "generate") is not None, hooks["generate"]),
        ("curate", lambda: curation_is_current(config), hooks["curate"]),
        ("package", lambda: release_is_current(config), hooks["package"]),
    ]


def run_pipeline(
    config: RunConfig,
    hooks: dict[str, Callable[..., Any]],
    report: Callable[[str, str, float], None],
) -> None:
    """Run every step that is not done yet, in order; ``report(step, status, seconds)``.
    The run folder stays locked from the first step to the last."""
    with RunFolder(config.run).lock("run"):
        for name, is_done, do in steps(config, hooks):
            if is_done():
                report(name, "skipped (already done)", 0.0)
                continue
            started = time.monotonic()
            do()
            report(name, "done", time.monotonic() - started)


def curate_config(config: RunConfig) -> CurateConfig:
    return CurateConfig.load(config.curate.config)
