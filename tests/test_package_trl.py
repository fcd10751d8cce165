"""A packaged release goes straight into TRL's vision-language data collator: the rows of
`load_dataset` (``images`` + ``messages``), no conversion, with a tiny processor built in the test
(nothing downloaded). Nothing is trained; one forward pass of a tiny LLaVA shows the batch is
what a model takes. Needs torch, transformers and trl (the ``train`` extra); skipped without,
except under DERMASYNTH_TRAIN_TESTS=1 (as `.ci/run` sets), where a missing extra fails."""

from __future__ import annotations

import os

import datasets
import pytest

from dermasynth_builder.curate import curate
from dermasynth_builder.engine import Engine, GenerateOptions
from dermasynth_builder.package import package
from dermasynth_builder.paths import sample_root
from dermasynth_builder.plan import make_plan

if os.environ.get("DERMASYNTH_TRAIN_TESTS") == "1":  # .ci/run: a missing extra fails
    import torch
    import transformers  # noqa: F401
    import trl  # noqa: F401
else:
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("trl")


def test_release_rows_feed_trl_vision_collator(tmp_path):
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    from tests.support.tiny_vlm import IMAGE_TOKEN, tiny_model, tiny_processor

    run = tmp_path / "run"
    make_plan([(s, sample_root(s)) for s in ("hiba", "scin")], run)
    Engine(run, GenerateOptions(backend="offline")).run_sync()
    curate(run, figures=False)
    package(run, tmp_path / "rel")
    datasets.disable_progress_bars()
    ds = datasets.load_dataset(str(tmp_path / "rel"), "all", cache_dir=str(tmp_path / "c"))
    rows = [ds["train"][i] for i in range(3)]
    texts = [part["text"] for r in rows for m in r["messages"] for part in m["content"]]
    processor = tiny_processor([t for t in texts if t])
    collator = DataCollatorForVisionLanguageModeling(processor)
    batch = collator([dict(r) for r in rows])  # the rows as load_dataset gives them
    assert batch["input_ids"].shape[0] == 3 and batch["pixel_values"].shape[0] == 3
    image_id = processor.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    per_row = (batch["input_ids"] == image_id).sum(dim=1)
    assert per_row.min() > 0 and per_row.min() == per_row.max()  # one image each, expanded
    assert (batch["labels"][batch["attention_mask"] == 0] == -100).all()
    decoded = processor.tokenizer.decode(batch["input_ids"][0])
    for pair in rows[0]["pairs"]:  # every turn of the image's conversation is in its sequence
        assert pair["answer"][:40] in decoded
    with torch.no_grad():
        loss = tiny_model(processor)(**batch).loss
    assert torch.isfinite(loss)
