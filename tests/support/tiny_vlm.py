"""A tiny, randomly initialised vision-language model and its processor, built from configs in
memory (nothing downloaded): what the fine-tuning tests train instead of an 11B model.

The architecture is LLaVA (a CLIP vision tower, a projector and a Llama language model), which
``AutoModelForImageTextToText`` and ``AutoProcessor`` load like any hub model once saved. The
tokenizer is a byte-level BPE trained in a second on the text it will see.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

IMAGE_TOKEN = "<image>"
SPECIAL = ["<pad>", "<s>", "</s>", IMAGE_TOKEN, "<|user|>", "<|assistant|>", "<|end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message.role }}|>"
    "{% if message.content is string %}{{ message.content }}{% else %}"
    "{% for part in message.content %}{% if part.type == 'image' %}<image>"
    "{% elif part.type == 'text' %}{{ part.text }}{% endif %}{% endfor %}{% endif %}"
    "<|end|>{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
IMAGE_SIDE = 32
PATCH = 16


def tiny_tokenizer(texts: Iterable[str], vocab_size: int = 400):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="<|end|>",
        extra_special_tokens={"image_token": IMAGE_TOKEN},
    )


def tiny_processor(texts: Iterable[str]):
    from transformers import CLIPImageProcessor, LlavaProcessor

    image_processor = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIDE},
        crop_size={"height": IMAGE_SIDE, "width": IMAGE_SIDE},
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tiny_tokenizer(texts),
        patch_size=PATCH,
        vision_feature_select_strategy="default",
        chat_template=CHAT_TEMPLATE,
        image_token=IMAGE_TOKEN,
        num_additional_image_tokens=1,
    )


def tiny_model(processor, seed: int = 0):
    import torch
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
    )

    tok = processor.tokenizer
    torch.manual_seed(seed)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=IMAGE_SIDE,
            patch_size=PATCH,
            projection_dim=32,
        ),
        text_config=LlamaConfig(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            # wider than the default 0.02, so that the LoRA on the attention and MLP moves the
            # logits within a few steps (the tests watch the loss go down)
            initializer_range=0.2,
            pad_token_id=tok.pad_token_id,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
        ),
        image_token_id=tok.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    return LlavaForConditionalGeneration(config)


def save_tiny_vlm(dest: Path, texts: Iterable[str], seed: int = 0) -> Path:
    """Save a tiny model and processor to ``dest`` (loadable with ``from_pretrained``)."""
    processor = tiny_processor(texts)
    model = tiny_model(processor, seed)
    model.save_pretrained(dest)
    processor.save_pretrained(dest)
    return dest


def save_text_only_model(dest: Path) -> Path:
    """The config of a text-only Llama (no weights needed): a base `finetune` must refuse."""
    from transformers import LlamaConfig

    LlamaConfig(
        vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2
    ).save_pretrained(dest)
    return dest
