"""The adapter's model card: which release (and its fingerprint) it learned from, the recipe,
and the eval folders that score it, so a result can be traced back to its data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .options import FinetuneOptions
    from .train import FinetuneResult


def _eval_lines(folders: list[Path]) -> list[str]:
    lines = []
    for folder in folders:
        path = Path(folder) / "eval.json"
        if not path.is_file():
            lines.append(f"- `{folder}` (no eval.json yet)")
            continue
        report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        scores = ", ".join(
            f"{r['source']}/{r['task']} {100 * r['accuracy']:.1f}% "
            f"(chance {100 * r['chance']:.1f}%)"
            for r in report.get("results", [])
        )
        lines.append(f"- `{folder}`: {report.get('model')} ({report.get('backend')}): {scores}")
    return lines


def card_text(options: FinetuneOptions, result: FinetuneResult) -> str:
    evals = _eval_lines(options.eval_folders) or ["- none named (`--eval-folder EVAL`)"]
    front = "\n".join(
        [
            "---",
            f"base_model: {options.base}",
            "library_name: peft",
            "pipeline_tag: image-text-to-text",
            "tags: [dermatology, lora, sft, trl, dermasynth]",
            "---",
        ]
    )
    fingerprint = result.fingerprint or "unknown (not a local folder)"
    subset = (
        f" (seeded per-source subset of {options.samples}, seed {options.seed})"
        if options.samples
        else ""
    )
    qlora = ", 4-bit base (QLoRA)" if options.load_in_4bit else ""
    loss = None if result.train_loss is None else round(result.train_loss, 4)
    return f"""{front}

# LoRA adapter for {options.base}, trained on a DermaSynth release

The DermatoLlama recipe: LoRA supervised fine-tuning with TRL on synthetic dermatology
image-text conversations. Not a medical device; for research only.

- Release: `{options.release}` (config `{options.config}`, split `train`)
- Release fingerprint (sha256 of its data files): `{fingerprint}`
- Rows (images with their conversations): {result.rows}{subset}
- LoRA: r={options.lora_r}, alpha={options.lora_alpha}, dropout={options.lora_dropout}, modules
  `{options.target_modules}`{qlora}
- Training: {result.steps} optimizer steps, learning rate {options.learning_rate},
  batch {options.batch_size} x {options.grad_accum} accumulation per device, final train loss {loss}

## Evaluations

{chr(10).join(evals)}

The text of the pairs carries the licence of its release (see the release's card); images keep
their sources' licences.
"""


def write_card(adapter: Path, options: FinetuneOptions, result: FinetuneResult) -> Path:
    path = Path(adapter) / "README.md"
    path.write_text(card_text(options, result), encoding="utf-8")
    return path
