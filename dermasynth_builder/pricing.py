"""Model profiles (``model_profiles.yaml``): per model family the image token rule, the thinking
control and dated standard and batch prices; and the cost of a run's usage.

Gemini 2.x bills an image by 768 px tiles, Gemini 3.x by ``media_resolution``; 3.x models think
by default and thought tokens bill as output. Keeping these facts as data means a new model is a
YAML entry, and an unknown one is priced "unknown" rather than at $0.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from .paths import PACKAGE

PROFILES = PACKAGE / "model_profiles.yaml"
MEDIA_RESOLUTIONS = ("low", "medium", "high", "ultra_high")
MediaResolution = Literal["low", "medium", "high", "ultra_high"]
TILE_SIDE = 768  # Gemini 2.x: one tile


class Price(BaseModel):
    """USD per 1M tokens, with the date it was read and where."""

    model_config = ConfigDict(extra="forbid")
    input: float = Field(ge=0)
    output: float = Field(ge=0)
    date: str = ""
    source: str = ""


class ModelProfile(BaseModel):
    """What one model family bills for and which controls it takes."""

    model_config = ConfigDict(extra="forbid")
    family: str = ""
    status: str = ""
    images: Literal["tiles", "media_resolution"] = "tiles"
    media_resolution: MediaResolution | None = None  # the default for this family
    max_image_side: int = Field(default=TILE_SIDE, ge=64)  # downscale past this side
    thinking: Literal["none", "level", "budget"] = "none"
    thinking_levels: list[str] = Field(default_factory=list)
    default_thinking: str | None = None
    standard: Price | None = None
    batch: Price | None = None

    def price(self, batch: bool = False) -> Price | None:
        return self.batch if batch else self.standard


class Profiles(BaseModel):
    """The whole profile file."""

    model_config = ConfigDict(extra="forbid")
    default_model: str
    media_resolution_tokens: dict[str, int]
    families: dict[str, ModelProfile]

    def find(self, model: str) -> ModelProfile | None:
        """The profile of ``model``; versioned names fall back to their family."""
        name = model.removeprefix("models/")
        while name:
            if name in self.families:
                return self.families[name]
            if "-" not in name:
                return None
            name = name.rsplit("-", 1)[0]
        return None

    def current(self) -> list[str]:
        """Families whose status says they are served today (for error messages)."""
        return [k for k, p in self.families.items() if p.status.startswith("current")]


@functools.lru_cache(maxsize=8)
def _load(path: Path, prices: Path | None) -> Profiles:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for name, entry in (data.get("families") or {}).items():
        entry.setdefault("family", name)
    profiles = Profiles.model_validate(data)
    if prices is not None:
        _apply_prices(profiles, prices)
    return profiles


def load_profiles(prices: Path | None = None, path: Path | None = None) -> Profiles:
    """The bundled profiles, with the prices of a ``--prices`` file laid over them; a price
    file that cannot be read is a one-line ``SettingsError`` naming it."""
    try:
        return _load((path or PROFILES).resolve(), prices.resolve() if prices else None)
    except (OSError, yaml.YAMLError, AttributeError, TypeError, ValueError) as exc:
        if prices is None or isinstance(exc, SettingsError):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SettingsError(
            f"--prices {prices}: not a price table ({first}); expected lines such as "
            "'my-model: {input: 0.25, output: 1.5}' (USD per 1M tokens)"
        ) from None


def _apply_prices(profiles: Profiles, prices: Path) -> None:
    """A ``--prices`` file: ``model: {input, output[, batch_input, batch_output]}`` per line
    (the old prices.yaml format), plus optional profile fields for models not bundled."""
    data: dict[str, Any] = yaml.safe_load(prices.read_text(encoding="utf-8")) or {}
    for model, entry in data.items():
        entry = dict(entry or {})
        base = profiles.find(str(model)) or ModelProfile(family=str(model))
        fields = base.model_dump()
        note = {"date": "--prices", "source": str(prices)}
        if "input" in entry or "output" in entry:
            std = Price(input=entry.pop("input", 0.0), output=entry.pop("output", 0.0), **note)
            fields["standard"] = std.model_dump()
            fields["batch"] = Price(
                input=entry.pop("batch_input", std.input / 2),
                output=entry.pop("batch_output", std.output / 2),
                **note,
            ).model_dump()
        fields.update(entry)
        fields["family"] = str(model)
        profiles.families[str(model)] = ModelProfile.model_validate(fields)


def cost(
    profile: ModelProfile | None, input_tokens: int, output_tokens: int, batch: bool = False
) -> float | None:
    """USD for the usage (thought tokens counted in ``output_tokens``); None when unknown."""
    price = profile.price(batch) if profile is not None else None
    if price is None:
        return None
    return (input_tokens * price.input + output_tokens * price.output) / 1e6


def tile_tokens(width: int, height: int) -> int:
    """Gemini 2.x: 258 when both sides are <= 384 px, else 258 per 768x768 tile."""
    if width <= 384 and height <= 384:
        return 258
    return 258 * math.ceil(width / TILE_SIDE) * math.ceil(height / TILE_SIDE)


@dataclass(frozen=True, slots=True)
class ModelSettings:
    """One run's resolved model controls: what is sent, and what an image costs in tokens."""

    model: str
    profile: ModelProfile | None
    media_resolution: str | None  # sent with every image (None: not sent)
    thinking: str | int | None  # a level, a budget, or None (the model's own default)
    keep_original: bool  # send the file's own bytes when they fit
    max_image_side: int
    mr_tokens: int | None  # fixed tokens per image under media resolution, else None

    def image_tokens(self, width: int | None = None, height: int | None = None) -> int:
        """Tokens for one image; without a size, the most a prepared image can bill."""
        if self.mr_tokens is not None:
            return self.mr_tokens
        side = self.max_image_side
        return tile_tokens(width or side, height or side)

    def record(self) -> dict[str, Any]:
        """What run.json keeps about the model settings and the prices used."""
        p = self.profile
        return {
            "model": self.model,
            "family": p.family if p else None,
            "image_tokens": p.images if p else "unknown",
            "media_resolution": self.media_resolution,
            "thinking": self.thinking,
            "original_bytes": self.keep_original,
            "max_image_side": self.max_image_side,
            "prices": {
                tier: (price.model_dump() if price else None)
                for tier, price in (("standard", p and p.standard), ("batch", p and p.batch))
            },
        }


class SettingsError(ValueError):
    """A --media-resolution / --thinking value the model does not take (one line)."""


def resolve_settings(
    profiles: Profiles,
    model: str,
    media_resolution: str | None = None,
    thinking: str | None = None,
    max_image_side: int | None = None,
) -> ModelSettings:
    """The run's settings from the model's profile and the user's options."""
    profile = profiles.find(model)
    mr_tokens = None
    if profile is not None and profile.images == "media_resolution":
        media_resolution = media_resolution or profile.media_resolution or "high"
        mr_tokens = profiles.media_resolution_tokens[media_resolution]
    elif media_resolution is not None and profile is not None:
        raise SettingsError(
            f"--media-resolution: {model} bills images by 768 px tiles; it takes no media "
            "resolution (Gemini 3.x models do)"
        )
    side = max_image_side or (profile.max_image_side if profile else TILE_SIDE)
    keep = mr_tokens is not None  # originals when they fit; tile models always downscale
    return ModelSettings(
        model=model,
        profile=profile,
        media_resolution=media_resolution,
        thinking=_thinking(profile, model, thinking),
        keep_original=keep,
        max_image_side=side,
        mr_tokens=mr_tokens,
    )


def _thinking(profile: ModelProfile | None, model: str, value: str | None) -> str | int | None:
    """``--thinking``: a level (minimal/low/medium/high), a token budget, ``model`` (send
    nothing: the model's own default), or unset (the profile's default)."""
    if value is None:
        return profile.default_thinking if profile else None
    value = value.strip().lower()
    if value in ("model", "default"):
        return None
    budget = int(value) if value.lstrip("-").isdigit() else None
    kind = profile.thinking if profile else ("budget" if budget is not None else "level")
    if kind == "none":
        raise SettingsError(f"--thinking: {model} has no thinking control")
    if kind == "budget":
        if budget is None or budget < -1:
            raise SettingsError(f"--thinking: {model} takes a token budget (-1, 0 or more)")
        return budget
    if budget is not None:
        raise SettingsError(f"--thinking: {model} takes a level, not a budget")
    levels = profile.thinking_levels if profile else []
    if levels and value not in levels:
        raise SettingsError(f"--thinking: {model} takes one of {', '.join(levels)} (or 'model')")
    return value
