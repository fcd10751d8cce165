"""LoRA supervised fine-tuning of a vision-language model on a release (the DermatoLlama recipe).

TRL's ``SFTTrainer`` reads the release's ``messages`` and ``images`` columns as they are
published (its vision-language collator applies the base model's own chat template). It runs
unchanged under ``accelerate launch`` (DDP, FSDP or DeepSpeed come from the accelerate config),
resumes from the newest whole checkpoint in ``OUT/checkpoints``, and saves the adapter with a
model card in ``OUT/adapter``. torch, transformers, trl and peft come from the ``train`` extra
and are imported only here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .card import write_card
from .data import FinetuneError, draw_samples, load_release, release_fingerprint
from .options import FinetuneOptions

EXTRA = ("torch", "transformers", "trl", "peft")
INSTALL = "pip install 'dermasynth-builder[train]'"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def missing_extra() -> list[str]:
    """The training extra's packages that are not installed."""
    return [name for name in EXTRA if importlib.util.find_spec(name) is None]


@dataclass(slots=True)
class FinetuneResult:
    adapter: Path
    merged: Path | None
    rows: int
    steps: int
    resumed_from: str | None
    train_loss: float | None
    fingerprint: str | None
    start_step: int = 0  # the step it resumed at (0 for a fresh start)
    losses: list[float] = field(default_factory=list)  # the logged training losses, in order


def last_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint whose trainer state was written whole (the Trainer writes it
    last, so a checkpoint cut short by a kill is passed over)."""
    if not folder.is_dir():
        return None
    found = sorted(
        (int(m[1]), p) for p in folder.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name))
    )
    for _, path in reversed(found):
        try:
            json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        return path
    return None


def check_base(base: str) -> Any:
    """The base model's config, if ``AutoModelForImageTextToText`` can load it."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    try:
        config = AutoConfig.from_pretrained(base)
    except (OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise FinetuneError(f"--base {base}: cannot load its config: {first}") from None
    if config.model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        raise FinetuneError(
            f"--base {base}: a {config.model_type!r} model is not image-text-to-text "
            "(choose a vision-language model that AutoModelForImageTextToText loads)"
        )
    return config


def _checkpointing(on: bool) -> dict[str, bool]:
    """Activation checkpointing under the name this transformers reads (renamed in 5.x)."""
    import dataclasses

    from trl import SFTConfig

    names = {f.name for f in dataclasses.fields(SFTConfig)}
    return {
        "activation_checkpointing"
        if "activation_checkpointing" in names
        else "gradient_checkpointing": on
    }


def lora_config(options: FinetuneOptions) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=options.lora_r,
        lora_alpha=options.lora_alpha,
        lora_dropout=options.lora_dropout,
        target_modules=options.target_modules,
        task_type="CAUSAL_LM",
    )


def load_base(options: FinetuneOptions) -> tuple[Any, Any]:
    """The base model (4-bit for QLoRA) and its processor."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    kwargs: dict[str, Any] = {}
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        kwargs["dtype"] = torch.bfloat16
    if options.load_in_4bit:
        if importlib.util.find_spec("bitsandbytes") is None or not torch.cuda.is_available():
            raise FinetuneError("--load-in-4bit (QLoRA) needs a GPU and `pip install bitsandbytes`")
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
            bnb_4bit_quant_storage=torch.bfloat16,  # one dtype, so that FSDP can shard it
        )
        if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() != "true":
            kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    model = AutoModelForImageTextToText.from_pretrained(options.base, **kwargs)
    processor = AutoProcessor.from_pretrained(options.base)
    return model, processor


def _finished(checkpoint: Path, options: FinetuneOptions) -> dict[str, Any] | None:
    """The checkpoint's trainer state if it already reached the planned number of steps."""
    state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    target = options.max_steps if options.max_steps > 0 else state.get("max_steps", 0)
    return state if state.get("global_step", 0) >= target > 0 else None


def _adapter_from(checkpoint: Path, adapter: Path, processor: Any) -> None:
    """Publish the checkpoint's adapter (a rerun after training ended, or after a kill between
    the last checkpoint and the adapter's save) without loading the model again."""
    adapter.mkdir(parents=True, exist_ok=True)
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        tmp = adapter / f".{name}.tmp"
        shutil.copyfile(checkpoint / name, tmp)
        os.replace(tmp, adapter / name)
    processor.save_pretrained(str(adapter))


def _losses(log_history: list[dict[str, Any]]) -> list[float]:
    return [float(e["loss"]) for e in log_history if "loss" in e]


def finetune(options: FinetuneOptions, say: Callable[[str], None] = print) -> FinetuneResult:
    """Train (or resume) a LoRA adapter on the release; returns where it was saved.

    Rerun with the same OUT after a kill: it continues from the newest whole checkpoint. Rerun
    after it finished: no step is repeated; the adapter's card is written again (with any new
    ``eval_folders``).
    """
    if missing := missing_extra():
        raise FinetuneError(f"finetune needs {', '.join(missing)}: {INSTALL}")
    import torch
    from transformers import AutoProcessor
    from transformers.utils import logging as hf_logging
    from trl import SFTConfig, SFTTrainer

    hf_logging.set_verbosity_warning()
    ds = load_release(options.release, options.config)
    ds = draw_samples(ds, options.samples, options.seed).select_columns(["messages", "images"])
    check_base(options.base)
    checkpoints = Path(options.out) / "checkpoints"
    adapter = Path(options.out) / "adapter"
    resume = last_checkpoint(checkpoints)
    start = int(_CHECKPOINT.match(resume.name)[1]) if resume else 0  # type: ignore[index]
    result = FinetuneResult(
        adapter=adapter,
        merged=None,
        rows=len(ds),
        steps=start,
        resumed_from=str(resume) if resume else None,
        train_loss=None,
        fingerprint=release_fingerprint(options.release),
        start_step=start,
    )
    state = _finished(resume, options) if resume else None
    if state is not None:
        say(f"already trained: {resume} is step {start} of {start}")
        processor = AutoProcessor.from_pretrained(options.base)
        main = int(os.environ.get("RANK", "0")) == 0
        if main:
            _adapter_from(resume, adapter, processor)
        result.losses = _losses(state.get("log_history", []))
        model = None
    else:
        if resume is not None:
            say(f"resuming from {resume} (step {start})")
        model, processor = load_base(options)
        args = SFTConfig(
            output_dir=str(checkpoints),
            num_train_epochs=options.epochs,
            max_steps=options.max_steps,
            per_device_train_batch_size=options.batch_size,
            gradient_accumulation_steps=options.grad_accum,
            learning_rate=options.learning_rate,
            lr_scheduler_type="cosine",
            warmup_steps=0.03,
            logging_steps=options.logging_steps,
            save_steps=options.save_steps,
            save_total_limit=2,
            seed=options.seed,
            data_seed=options.seed,
            bf16=bool(model.dtype == torch.bfloat16),
            **_checkpointing(options.gradient_checkpointing),
            max_length=None,  # never cut a conversation inside its image tokens
            report_to="none",
            disable_tqdm=None,
        )
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=ds,
            processing_class=processor,
            peft_config=lora_config(options),
        )
        output = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        result.train_loss = output.training_loss
        if trainer.is_fsdp_enabled:  # gather the sharded adapter into one file to save it
            trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
        trainer.save_model(str(adapter))
        result.steps = trainer.state.global_step
        result.losses = _losses(trainer.state.log_history)
        model = trainer.model
        main = trainer.is_world_process_zero()
    if result.losses:  # the last logged loss, rather than the mean over this run's steps
        result.train_loss = result.losses[-1]
    if main:
        if options.merge:
            result.merged = merge(options, adapter, processor, model)
        write_card(adapter, options, result)
    return result


def merge(options: FinetuneOptions, adapter: Path, processor: Any, model: Any | None) -> Path:
    """The base with the adapter merged in (OUT/merged), for servers without LoRA support."""
    if model is None:
        from peft import PeftModel

        base, _ = load_base(options.model_copy(update={"load_in_4bit": False}))
        model = PeftModel.from_pretrained(base, str(adapter))
    merged = Path(options.out) / "merged"
    model.merge_and_unload().save_pretrained(str(merged))
    processor.save_pretrained(str(merged))
    return merged
