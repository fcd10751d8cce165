"""Fine-tuning: the DermatoLlama recipe (LoRA SFT with TRL) on a packaged release. The heavy
packages come from the optional ``train`` extra and are imported only by ``train``."""

from .data import FinetuneError, draw_samples, load_release, release_fingerprint
from .options import PAPER_BASE, PAPER_SAMPLES, FinetuneOptions

__all__ = [
    "PAPER_BASE",
    "PAPER_SAMPLES",
    "FinetuneError",
    "FinetuneOptions",
    "draw_samples",
    "load_release",
    "release_fingerprint",
]
