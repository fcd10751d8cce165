"""The image bytes a release row stores: the original file, or a downscaled JPEG.

A module of its own, not part of the hub builder's file: `datasets` swaps ``open``, ``Path`` and
``os.path`` in a builder's module for its URL-aware versions, which parse every image path as a
possible URL; reading images here keeps plain file access.
"""

from __future__ import annotations

import io
import os
from typing import Any

from PIL import Image

__all__ = ["header_size", "image_bytes"]

_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP")


def header_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG or JPEG header, without decoding (None if not found)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            return int.from_bytes(data[i + 7 : i + 9], "big"), height
        i += 2 + length
    return None


def image_bytes(root: str, rel: str, max_side: int | None) -> tuple[dict[str, Any], bool]:
    """The image as stored bytes and whether it was re-encoded: the original file when it fits
    (or ``max_side`` is None), else re-encoded as JPEG with its longest side ``max_side``.

    No file name is stored (``image_id`` names the image): with a name, `datasets` parses it as
    a possible URL for every image, a sizeable share of the build time."""
    with open(os.path.join(root, rel), "rb") as fh:
        data = fh.read()
    if max_side is None:
        return {"bytes": data, "path": None}, False
    size = header_size(data)
    if size is not None and max(size) <= max_side:
        return {"bytes": data, "path": None}, False
    with Image.open(io.BytesIO(data), formats=_FORMATS) as im:
        if max(im.size) <= max_side:
            return {"bytes": data, "path": None}, False
        if im.mode in ("RGBA", "LA", "P"):
            im = im.convert("RGBA")
            rgb = Image.new("RGB", im.size, (255, 255, 255))
            rgb.paste(im, mask=im.getchannel("A"))
        else:
            rgb = im.convert("RGB")
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        rgb.save(buf, "JPEG", quality=90)
        return {"bytes": buf.getvalue(), "path": None}, True
