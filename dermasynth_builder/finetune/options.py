"""The options of ``dermasynth finetune``: the DermatoLlama recipe's defaults, as in the paper."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

PAPER_BASE = "meta-llama/Llama-3.2-11B-Vision-Instruct"
PAPER_SAMPLES = 5000
# LoRA on the language model's attention and MLP projections only (the vision tower stays
# frozen); the names are shared by Llama-3.2-Vision, LLaVA, Qwen2-VL, Gemma 3 and others.
LANGUAGE_PROJECTIONS = (
    r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
)


class FinetuneOptions(BaseModel):
    """Everything ``dermasynth finetune`` can be told."""

    model_config = ConfigDict(extra="forbid")
    release: str  # a release folder (or a hub dataset id `load_dataset` can reach)
    out: Path
    base: str = PAPER_BASE
    config: str = "all"
    samples: int | None = Field(default=None, ge=1)  # the paper: 5,000
    seed: int = 0
    epochs: float = Field(default=1.0, gt=0)
    max_steps: int = -1
    learning_rate: float = Field(default=2e-4, gt=0)
    batch_size: int = Field(default=1, ge=1)
    grad_accum: int = Field(default=8, ge=1)
    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    lora_dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: str = LANGUAGE_PROJECTIONS
    save_steps: int = Field(default=100, ge=1)
    logging_steps: int = Field(default=10, ge=1)
    load_in_4bit: bool = False  # QLoRA (needs bitsandbytes and a GPU)
    gradient_checkpointing: bool = False
    merge: bool = False  # also write the base with the adapter merged in, for servers
    eval_folders: list[Path] = Field(default_factory=list)  # named in the model card
