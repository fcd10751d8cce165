"""``dermasynth finetune``: the DermatoLlama recipe (LoRA SFT with TRL) on a packaged release."""

from __future__ import annotations

import os
from pathlib import Path

import click
from pydantic import ValidationError

from .common import UsageFailure, err, out

SERVE = """\
Serve it with an OpenAI-compatible server that enforces response_format (vLLM serves LoRA
adapters of many bases, such as Qwen2.5-VL; for Llama-3.2-Vision rerun with --merge):
  vllm serve {base} --enable-lora --lora-modules dermatollama={adapter} --max-lora-rank {rank}
then score it on your run's held-out images:
  dermasynth eval RUN --out evals/dermatollama --backend openai \\
      --base-url http://127.0.0.1:8000/v1 --model dermatollama"""
SERVE_MERGED = """\
Serve the merged model with an OpenAI-compatible server that enforces response_format (SGLang
serves Llama-3.2-Vision; vLLM many other bases):
  python -m sglang.launch_server --model-path {merged} --served-model-name dermatollama --port 8000
then score it on your run's held-out images:
  dermasynth eval RUN --out evals/dermatollama --backend openai \\
      --base-url http://127.0.0.1:8000/v1 --model dermatollama"""


@click.command()
@click.argument("release")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option(
    "--base",
    default="meta-llama/Llama-3.2-11B-Vision-Instruct",
    show_default=True,
    help="Any image-text-to-text model transformers loads (hub id or folder).",
)
@click.option("--config", default="all", show_default=True, help="Release config (a source).")
@click.option(
    "--samples", type=click.IntRange(min=1), help="Seeded per-source subset (the paper: 5000)."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--epochs", type=float, default=1.0, show_default=True)
@click.option("--max-steps", type=int, default=-1, show_default=True, help="Overrides --epochs.")
@click.option("--learning-rate", type=float, default=2e-4, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--grad-accum", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--lora-r", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--lora-alpha", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--lora-dropout", type=float, default=0.05, show_default=True)
@click.option("--save-steps", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--logging-steps", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--load-in-4bit", is_flag=True, help="QLoRA: a 4-bit base (GPU, bitsandbytes).")
@click.option("--gradient-checkpointing", is_flag=True, help="Less memory, slower steps.")
@click.option("--merge", is_flag=True, help="Also save the base with the adapter merged in.")
@click.option(
    "--eval-folder",
    "eval_folders",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Eval folders to name in the model card (repeatable).",
)
def finetune(release: str, **kwargs: object) -> None:
    """Fine-tune a vision-language model with LoRA on RELEASE (a `dermasynth package` folder).

    TRL reads the release's `messages` and `images` as published. Stop and rerun at will: it
    resumes from the newest checkpoint in OUT/checkpoints. The adapter and its model card go to
    OUT/adapter. Runs unchanged under `accelerate launch -m dermasynth_builder finetune ...` on
    several GPUs. Needs the training extra: pip install 'dermasynth-builder[train]'.

    \b
    Examples:
      dermasynth finetune dermasynth --out dermatollama --samples 5000
      accelerate launch --config_file examples/accelerate_fsdp.yaml -m dermasynth_builder \\
          finetune dermasynth --out dermatollama --samples 5000 --gradient-checkpointing
    """
    from ..finetune.data import FinetuneError
    from ..finetune.options import FinetuneOptions
    from ..finetune.train import INSTALL, missing_extra

    if missing := missing_extra():
        raise UsageFailure(f"finetune needs the training extra ({', '.join(missing)}): {INSTALL}")
    try:
        options = FinetuneOptions(release=release, **kwargs)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UsageFailure(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}") from None
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from ..finetune.train import finetune as run_finetune

    try:
        result = run_finetune(options, say=lambda text: err.print(text))
    except FinetuneError as exc:
        raise UsageFailure(str(exc)) from None
    if int(os.environ.get("RANK", "0")) != 0:
        return
    loss = "-" if result.train_loss is None else f"{result.train_loss:.4f}"
    resumed = f" (resumed at step {result.start_step}, now {result.steps})"
    out.print(
        f"trained {result.steps - result.start_step} steps"
        f"{resumed if result.start_step else ''} on {result.rows} rows (train loss {loss}); "
        f"adapter and model card in {result.adapter}"
    )
    if result.merged:
        out.print(SERVE_MERGED.format(merged=result.merged))
    else:
        out.print(SERVE.format(base=options.base, adapter=result.adapter, rank=options.lora_r))
