"""Large PNGs are decoded a strip at a time (issue 11: bounded memory): the result is exactly
what a whole decode, flattened and reduced by the same factor, gives."""

from __future__ import annotations

import random

import pytest
from PIL import Image

from dermasynth_builder import png_strips
from dermasynth_builder.images import prepare_image


def noisy(mode: str, size: tuple[int, int], seed: int = 0) -> Image.Image:
    """Random-ish pixels in smooth bands, so the encoder picks every row filter."""
    rng = random.Random(seed)
    w, h = size
    base = Image.radial_gradient("L").resize(size)
    noise = Image.frombytes("L", size, bytes(rng.randrange(256) for _ in range(w * h)))
    grey = Image.blend(base, noise, 0.3)
    if mode == "L":
        return grey
    rgb = Image.merge("RGB", (grey, noise, base))
    if mode == "RGB":
        return rgb
    if mode == "RGBA":
        return Image.merge("RGBA", (grey, noise, base, noise))
    if mode == "LA":
        return Image.merge("LA", (grey, noise))
    return rgb.quantize(64)  # P


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "P+tRNS"])
@pytest.mark.parametrize("max_side", [40, 97, 500])
def test_strips_give_the_whole_decode_reduced(tmp_path, monkeypatch, mode, max_side):
    monkeypatch.setattr(png_strips, "STRIP_BYTES", 2000)  # many strips, a partial last one
    image = noisy(mode.split("+")[0], (301, 203))
    path = tmp_path / "a.png"
    image.save(path, transparency=3) if mode == "P+tRNS" else image.save(path)
    info = png_strips.header(path)
    assert png_strips.can_strip(info)
    got = png_strips.decode_reduced(path, info, max_side)
    factor = -(-301 // max_side)
    with Image.open(path) as whole:
        whole.load()
        want = png_strips._flatten(whole)
    want = want.reduce(factor) if factor > 1 else want
    assert got.size == want.size and got.tobytes() == want.tobytes()


def test_prepare_image_takes_the_strip_path_for_a_large_png(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    noisy("RGB", (1200, 900)).save(path)
    calls = []
    real = png_strips.decode_reduced
    monkeypatch.setattr(png_strips, "decode_reduced", lambda *a: calls.append(1) or real(*a))
    data, width, height = prepare_image(path, 300)
    assert calls and (width, height) == (300, 225) and data[:2] == b"\xff\xd8"
