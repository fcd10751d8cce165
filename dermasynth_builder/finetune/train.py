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
import re
from collections.abc import Callable
from dataclasses import dataclass
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
        )
    model = AutoModelForImageTextToText.from_pretrained(options.base, **kwargs)
    processor = AutoProcessor.from_pretrained(options.base)
    return model, processor


def finetune(options: FinetuneOptions, say: Callable[[str], None] = print) -> FinetuneResult:
    """Train (or resume) a LoRA adapter on the release; returns where it was saved."""
    if missing := missing_extra():
        raise FinetuneError(f"finetune needs {', '.join(missing)}: {INSTALL}")
    import torch
    from transformers.utils import logging as hf_logging
    from trl import SFTConfig, SFTTrainer

    hf_logging.set_verbosity_warning()
    ds = load_release(options.release, options.config)
    ds = draw_samples(ds, options.samples, options.seed).select_columns(["messages", "images"])
    check_base(options.base)
    model, processor = load_base(options)
    checkpoints = Path(options.out) / "checkpoints"
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
        gradient_checkpointing=options.gradient_checkpointing,
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
    resume = last_checkpoint(checkpoints)
    if resume is not None:
        say(f"resuming from {resume}")
    output = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    adapter = Path(options.out) / "adapter"
    trainer.save_model(str(adapter))
    merged = None
    fingerprint = release_fingerprint(options.release)
    result = FinetuneResult(
        adapter=adapter,
        merged=None,
        rows=len(ds),
        steps=trainer.state.global_step,
        resumed_from=str(resume) if resume else None,
        train_loss=float(output.training_loss) if output.training_loss is not None else None,
        fingerprint=fingerprint,
    )
    if trainer.is_world_process_zero():
        if options.merge:
            merged = Path(options.out) / "merged"
            trainer.model.merge_and_unload().save_pretrained(str(merged))
            processor.save_pretrained(str(merged))
            result.merged = merged
        write_card(adapter, options, result)
    return result
