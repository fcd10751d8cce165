"""Estimated cost from token usage and a per-model price table (``prices.yaml``)."""

from __future__ import annotations

from pathlib import Path

import yaml

from .paths import PACKAGE

DEFAULT_PRICES = PACKAGE / "prices.yaml"
BATCH_DISCOUNT = 0.5


def load_prices(path: Path | None = None) -> dict[str, dict[str, float]]:
    data = yaml.safe_load((path or DEFAULT_PRICES).read_text(encoding="utf-8")) or {}
    return {
        str(k): {"input": float(v["input"]), "output": float(v["output"])} for k, v in data.items()
    }


def price_for(prices: dict[str, dict[str, float]], model: str) -> dict[str, float] | None:
    """Prices of ``model``; versioned names (``gemini-2.0-flash-001``) fall back to their family."""
    name = model.removeprefix("models/")
    while name:
        if name in prices:
            return prices[name]
        if "-" not in name:
            return None
        name = name.rsplit("-", 1)[0]
    return None


def cost(
    prices: dict[str, dict[str, float]],
    model: str,
    input_tokens: int,
    output_tokens: int,
    batch: bool = False,
) -> float | None:
    """USD for the given usage, or ``None`` when the model has no known price."""
    price = price_for(prices, model)
    if price is None:
        return None
    total = (input_tokens * price["input"] + output_tokens * price["output"]) / 1e6
    return total * (BATCH_DISCOUNT if batch else 1.0)
