"""The options of ``dermasynth generate`` (also the ``[generate]`` table of a run config).

A module of its own so the CLI and the run config can read them without importing a backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# The default model, chosen on 2026-12-02 (see model_profiles.yaml for the evidence): a current
# Gemini 3.x vision model with structured output, the lowest price of its generation and
# thinking levels down to "minimal". `--model gemini-2.0-flash` reproduces the paper where an
# endpoint still serves it.
DEFAULT_MODEL = "gemini-3.1-flash-lite"


class GenerateOptions(BaseModel):
    """Everything ``dermasynth generate`` can be told; defaults that work for the default model."""

    model_config = ConfigDict(extra="forbid")
    backend: str = "gemini"
    model: str = DEFAULT_MODEL
    base_url: str | None = None  # OpenAI-compatible servers (--backend openai)
    mode: Literal["online", "batch"] = "online"
    poll_interval: float = Field(default=30.0, gt=0)  # batch mode: first wait between polls
    rpm: float | None = Field(default=None, gt=0)
    tpm: float | None = Field(default=None, gt=0)
    concurrency: int = Field(default=32, ge=1)  # in all, shared out over the workers
    # processes that make the calls (past one core's worth of quota); they share the limits
    workers: int = Field(default=1, ge=1)
    max_attempts: int = Field(default=6, ge=1)
    max_content_attempts: int = Field(default=3, ge=1)
    retry_failed: bool = False
    one_question_per_request: bool = False
    # None: the model profile's (768 px for tile models; media-resolution models send the
    # original bytes and downscale only past what the highest resolution can use)
    max_image_side: int | None = Field(default=None, ge=64)
    # None: the profile's default (sent explicitly, so run.json says what was asked)
    media_resolution: Literal["low", "medium", "high", "ultra_high"] | None = None
    thinking: str | None = None  # a level, a token budget, or "model" (send nothing)
    temperature: float = Field(default=0.4, ge=0)
    seed: int | None = 0
    max_output_tokens: int = Field(default=2048, ge=16)
    timeout: float = Field(default=120.0, gt=0)
    retry_base_delay: float = Field(default=1.0, ge=0)
    retry_max_delay: float = Field(default=60.0, ge=0)
    # this many connection failures in a row (no server reached) stop the run
    max_connection_failures: int = Field(default=20, ge=1)
    # seconds between progress lines when stderr is not a terminal (logs, nohup, SLURM)
    progress_every: float = Field(default=30.0, gt=0)
    # disk kept for images prepared (decoded, downscaled, re-encoded) for this run at most
    image_cache_mb: int = Field(default=2048, ge=0)
    prices: Path | None = None
