"""Fine-tuning (the DermatoLlama recipe) on CPU: a tiny randomly initialised LLaVA-style model
built from configs in the test (tests/support/tiny_vlm.py), trained with TRL and PEFT on a
release that `dermasynth demo` packaged. Nothing is downloaded.

These tests need the training extra. Without it they skip, except where
DERMASYNTH_TRAIN_TESTS=1 (as `.ci/run` sets) makes a missing extra a failure.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from dermasynth_builder.cli import cli

REQUIRED = os.environ.get("DERMASYNTH_TRAIN_TESTS") == "1"


def _need_extra() -> None:
    from dermasynth_builder.finetune.train import missing_extra

    if missing := missing_extra():
        if REQUIRED:
            pytest.fail(f"DERMASYNTH_TRAIN_TESTS=1 but the training extra lacks {missing}")
        pytest.skip(f"training extra not installed ({', '.join(missing)})")


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HF_HOME=str(home / "hf"),
        HF_DATASETS_CACHE=str(home / "hf" / "datasets"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        OMP_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
    )
    return env


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """The demo release (five sources, `messages` + `images`, train and test splits)."""
    _need_extra()
    tmp = tmp_path_factory.mktemp("ftrelease")
    out = tmp / "dermasynth"
    subprocess.run(
        [sys.executable, "-m", "dermasynth_builder", "demo", "--out", str(out)],
        env=_env(tmp),
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


@pytest.fixture(scope="module")
def tiny(release, tmp_path_factory) -> Path:
    """A tiny LLaVA model and processor saved as a folder `--base` can name."""
    import datasets

    from tests.support.tiny_vlm import save_tiny_vlm

    ds = datasets.load_dataset(str(release), "all", split="train")
    texts = [p["text"] for row in ds["messages"] for m in row for p in m["content"] if p["text"]]
    return save_tiny_vlm(tmp_path_factory.mktemp("tiny") / "base", texts)


def _options(release: Path, out: Path, base: Path, **kw):
    from dermasynth_builder.finetune import FinetuneOptions

    defaults = {"batch_size": 2, "grad_accum": 1, "logging_steps": 1, "save_steps": 50}
    return FinetuneOptions(release=str(release), out=out, base=str(base), **{**defaults, **kw})


def test_release_feeds_trls_vision_language_collator(release, tiny):
    """The packaged release, loaded with stock `load_dataset`, goes straight into TRL's
    vision-language collator: images become pixels, the conversation becomes tokens."""
    import datasets
    from transformers import AutoProcessor
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    from tests.support.tiny_vlm import IMAGE_SIDE, IMAGE_TOKEN

    ds = datasets.load_dataset(str(release), "all", split="train")
    processor = AutoProcessor.from_pretrained(tiny)
    rows = [ds[i] for i in range(3)]
    batch = DataCollatorForVisionLanguageModeling(processor)(rows)
    assert tuple(batch["pixel_values"].shape) == (3, 3, IMAGE_SIDE, IMAGE_SIDE)
    image_id = processor.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    per_row = (batch["input_ids"] == image_id).sum(dim=1).tolist()
    assert per_row == [(IMAGE_SIDE // 16) ** 2] * 3  # one image per row, expanded to its patches
    for i, row in enumerate(rows):
        text = processor.tokenizer.decode(batch["input_ids"][i], skip_special_tokens=True)
        for pair in row["pairs"]:
            assert pair["question"] in text and pair["answer"] in text
        mask = batch["attention_mask"][i].bool()
        assert (batch["labels"][i][~mask] == -100).all()
        assert (batch["labels"][i][mask] != -100).any()


def test_a_few_steps_give_a_finite_loss_and_a_reloadable_adapter(release, tiny, tmp_path):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from dermasynth_builder.finetune.data import load_release, release_fingerprint
    from dermasynth_builder.finetune.train import finetune

    out = tmp_path / "ft"
    result = finetune(_options(release, out, tiny, max_steps=3), say=lambda _: None)
    assert result.steps == 3 and result.start_step == 0 and result.rows == 28
    assert len(result.losses) == 3 and all(math.isfinite(x) for x in result.losses)

    adapter = result.adapter
    card = (adapter / "README.md").read_text()
    assert str(release) in card and release_fingerprint(str(release)) in card
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 16
    saved = load_file(adapter / "adapter_model.safetensors")
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in saved.items())  # it learned

    processor = AutoProcessor.from_pretrained(tiny)
    base = AutoModelForImageTextToText.from_pretrained(tiny).eval()
    row = load_release(str(release), split="test")[0]
    prompt = processor.apply_chat_template(row["messages"][:1], add_generation_prompt=True)
    inputs = processor(images=row["images"], text=prompt, return_tensors="pt")
    with torch.no_grad():
        before = base(**inputs).logits
    model = PeftModel.from_pretrained(base, str(adapter)).eval()
    loaded = {k: v for k, v in model.state_dict().items() if "lora_" in k}
    assert len(loaded) == len(saved)
    for name, value in saved.items():
        match = [v for k, v in loaded.items() if k.replace(".default", "").endswith(name[-60:])]
        assert len(match) == 1 and torch.equal(match[0], value), name
    with torch.no_grad():
        after = model(**inputs).logits
        generated = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    assert not torch.allclose(before, after)  # the reloaded adapter changes the model
    new = generated[0, inputs["input_ids"].shape[1] :]
    assert 1 <= len(new) <= 6 and processor.tokenizer.decode(new).strip()

    # run again with an eval folder: no further steps, the card now names the eval
    evals = tmp_path / "evals" / "tiny"
    evals.mkdir(parents=True)
    (evals / "eval.json").write_text(
        json.dumps(
            {
                "model": "dermatollama",
                "backend": "openai",
                "results": [
                    {"source": "hiba", "task": "diagnosis", "accuracy": 0.4, "chance": 0.2}
                ],
            }
        )
    )
    again = finetune(_options(release, out, tiny, max_steps=3, eval_folders=[evals]), say=print)
    assert again.start_step == 3 and again.steps == 3
    assert "hiba/diagnosis 40.0% (chance 20.0%)" in (adapter / "README.md").read_text()


def test_loss_goes_down_on_a_repeated_batch(release, tiny, tmp_path):
    from dermasynth_builder.finetune.train import finetune

    options = _options(
        release, tmp_path / "ft", tiny, samples=2, max_steps=8, learning_rate=1e-2, lora_dropout=0
    )
    result = finetune(options, say=lambda _: None)
    assert result.rows == 2 and len(result.losses) == 8  # batch 2: the same two rows every step
    first, last = result.losses[0], result.losses[-1]
    assert last < first - 0.1 and min(result.losses) == last, result.losses


def _whole(checkpoint: Path) -> bool:
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return True


def test_kill_and_resume_continues_from_the_checkpoint(release, tiny, tmp_path):
    out = tmp_path / "ft"
    cmd = [sys.executable, "-m", "dermasynth_builder", "finetune", str(release), "--out", str(out)]
    cmd += ["--base", str(tiny), "--max-steps", "10", "--save-steps", "2", "--logging-steps", "1"]
    cmd += ["--grad-accum", "1", "--batch-size", "1"]
    env = _env(tmp_path)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    first = out / "checkpoints" / "checkpoint-2"
    while not _whole(first) and proc.poll() is None:
        assert time.monotonic() < deadline, "finetune wrote no checkpoint"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "finetune finished before it could be killed"
    done = [p for p in (out / "checkpoints").glob("checkpoint-*") if _whole(p)]
    at = max(int(p.name.split("-")[1]) for p in done)
    assert at < 10

    final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr[-3000:]
    assert f"resuming from {out / 'checkpoints' / f'checkpoint-{at}'}" in final.stderr
    assert f"trained {10 - at} steps (resumed at step {at}, now 10)" in final.stdout
    state = json.loads((out / "checkpoints" / "checkpoint-10" / "trainer_state.json").read_text())
    steps = [e["step"] for e in state["log_history"] if "loss" in e]
    assert steps == list(range(1, 11))  # every step once: none lost, none done twice
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert "vllm serve" in final.stdout and "--backend openai" in final.stdout


def test_runs_unchanged_on_two_processes(release, tiny, tmp_path):
    """The same command under a distributed launcher (torchrun, which `accelerate launch` uses;
    two CPU processes over gloo): each step takes a row per process, and only the main process
    writes the adapter's card and prints."""
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    cmd += ["--standalone", "-m", "dermasynth_builder", "finetune", str(release)]
    cmd += ["--out", str(out), "--base", str(tiny), "--max-steps", "3", "--grad-accum", "1"]
    env = {**_env(tmp_path), "ACCELERATE_USE_CPU": "true"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("trained 3 steps on 28 rows") == 1
    state = json.loads((out / "checkpoints" / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["epoch"] == pytest.approx(6 / 28, abs=1e-3)  # 3 steps x 2 processes x 1 row
    assert "Release fingerprint" in (out / "adapter" / "README.md").read_text()


def _one_line_error(args: list[str]) -> str:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, (args, result.output)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def test_missing_extra_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)  # find_spec reports it as not installed
    line = _one_line_error(["finetune", str(tmp_path), "--out", str(tmp_path / "o")])
    assert "peft" in line and "dermasynth-builder[train]" in line


def test_bad_release_or_base_is_one_line(release, tiny, tmp_path):
    import pyarrow.parquet as pq

    from tests.support.tiny_vlm import save_text_only_model

    flat = tmp_path / "flat"
    for path in release.rglob("*"):
        dest = flat / path.relative_to(release)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            continue
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            pq.write_table(table.drop_columns(["messages"]), dest)
        else:
            dest.write_bytes(path.read_bytes())
    out = str(tmp_path / "o")
    line = _one_line_error(["finetune", str(flat), "--out", out, "--base", str(tiny)])
    assert "no 'messages' column" in line
    line = _one_line_error(["finetune", str(tmp_path / "nowhere"), "--out", out])
    assert "no such release folder" in line
    text_only = save_text_only_model(tmp_path / "llama")
    line = _one_line_error(["finetune", str(release), "--out", out, "--base", str(text_only)])
    assert "'llama' model is not image-text-to-text" in line


@pytest.mark.parametrize("name", ["accelerate_fsdp.yaml", "accelerate_fsdp_qlora.yaml"])
def test_example_accelerate_configs_load_and_name_real_layers(name):
    _need_extra()
    from accelerate.commands.config.config_args import load_config_from_file
    from transformers.models.mllama import modeling_mllama

    config = load_config_from_file(str(Path(__file__).parents[1] / "examples" / name))
    assert str(config.distributed_type) == "DistributedType.FSDP"
    layers = config.fsdp_config["fsdp_transformer_layer_cls_to_wrap"].split(",")
    assert all(hasattr(modeling_mllama, layer) for layer in layers)


def test_the_papers_subset_is_drawn_per_source_and_seeded():
    """`--samples 5000`: each source keeps its share, and the draw depends only on the seed and
    the image ids (no training extra needed)."""
    import datasets

    from dermasynth_builder.finetune import draw_samples

    sources = ["derm12345"] * 600 + ["hiba"] * 300 + ["scin"] * 100
    ds = datasets.Dataset.from_dict(
        {"source": sources, "image_id": [f"{s}-{i}" for i, s in enumerate(sources)]}
    )
    a, b = draw_samples(ds, 50, seed=1), draw_samples(ds, 50, seed=1)
    assert a["image_id"] == b["image_id"] and len(a) == 50
    assert Counter(a["source"]) == {"derm12345": 30, "hiba": 15, "scin": 5}
    assert draw_samples(ds, 50, seed=2)["image_id"] != a["image_id"]
    assert len(draw_samples(ds, 5000)) == 1000  # asking for more than there is keeps all
    # an image's place does not depend on the others: a release that gains rows keeps a
    # subset of the old draw when the per-source quota is the same
    bigger = datasets.concatenate_datasets(
        [ds, datasets.Dataset.from_dict({"source": ["other"], "image_id": ["x"]})]
    )
    kept = set(draw_samples(bigger, 50, seed=1)["image_id"])
    assert len(kept & set(a["image_id"])) >= 45
