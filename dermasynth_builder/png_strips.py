"""Decode a large PNG a strip of rows at a time, reducing each strip as it comes, so memory
follows the output size and not the source size (issue 11: a 12000 x 12000 PNG took 1.3 GiB).

Pillow decodes a PNG whole. Here the zlib stream of the IDAT chunks is inflated a bounded
piece at a time; each strip of rows becomes a small PNG of its own (its first row the previous
strip's last unfiltered row, so the row filters that look one row up still work), which Pillow
decodes and ``reduce``s (box average) into the output. Only 8-bit, non-interlaced grey, RGB,
palette, grey+alpha and RGBA PNGs take this path (``can_strip``); others are decoded whole.
"""

from __future__ import annotations

import io
import math
import os
import struct
import zlib
from collections.abc import Iterator
from typing import Any

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> bytes per pixel at 8 bits
STRIP_BYTES = 4 * 2**20  # raw bytes of source rows held at once (about)


def _chunks(fh: Any) -> Iterator[tuple[bytes, int]]:
    """(type, length) of each chunk, the file positioned at its data (read it or not)."""
    while True:
        head = fh.read(8)
        if len(head) < 8:
            return
        length, kind = struct.unpack(">I4s", head)
        start = fh.tell()
        yield kind, length
        fh.seek(start + length + 4)  # data and CRC
        if kind == b"IEND":
            return


def header(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """IHDR and the palette chunks of a PNG, or None when the file is no PNG."""
    with open(path, "rb") as fh:
        if fh.read(8) != _SIGNATURE:
            return None
        info: dict[str, Any] = {"extra": []}
        for kind, length in _chunks(fh):
            if kind == b"IHDR":
                w, h, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", fh.read(13))
                info.update(width=w, height=h, depth=depth, colour=colour, interlace=interlace)
            elif kind in (b"PLTE", b"tRNS"):
                info["extra"].append((kind, fh.read(length)))
            elif kind == b"IDAT":
                return info
    return None


def can_strip(info: dict[str, Any] | None) -> bool:
    return (
        info is not None
        and info.get("depth") == 8
        and info.get("interlace") == 0
        and info.get("colour") in _CHANNELS
    )


def _idat(path: str | os.PathLike[str]) -> Iterator[bytes]:
    """The compressed image data, chunk by chunk."""
    with open(path, "rb") as fh:
        fh.read(8)
        for kind, length in _chunks(fh):
            if kind == b"IDAT":
                yield fh.read(length)


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def _rows(path: str | os.PathLike[str], row: int, rows: int) -> Iterator[bytes]:
    """The filtered scanlines (filter byte + data, ``row`` bytes each), ``rows`` at a time."""
    inflate = zlib.decompressobj()
    want = row * rows
    buf = bytearray()
    for data in _idat(path):
        while data:
            buf += inflate.decompress(data, max(want - len(buf), 1))
            data = inflate.unconsumed_tail
            while len(buf) >= want:
                yield bytes(buf[:want])
                del buf[:want]
    buf += inflate.flush()
    del buf[len(buf) - len(buf) % row :]  # a torn last row: the caller sees rows missing
    for start in range(0, len(buf), want):
        yield bytes(buf[start : start + want])


def decode_reduced(path: str | os.PathLike[str], info: dict[str, Any], max_side: int) -> Any:
    """The PNG at ``path`` as a Pillow image whose longest side is at most ``max_side``
    (reduced by a whole factor, box-averaged), decoded a strip at a time."""
    from PIL import Image

    width, height, colour = info["width"], info["height"], info["colour"]
    factor = max(1, math.ceil(max(width, height) / max_side))
    stride = width * _CHANNELS[colour]
    rows = max(factor, STRIP_BYTES // (stride + 1) // factor * factor)
    extra = b"".join(_chunk(kind, data) for kind, data in info["extra"])
    out: Any = None
    previous = bytes(stride)  # the row above the first: zeros, as the PNG filters assume
    y = 0
    for raw in _rows(path, stride + 1, rows):
        n = len(raw) // (stride + 1)
        ihdr = struct.pack(">IIBBBBB", width, n + 1, 8, colour, 0, 0, 0)
        data = zlib.compress(b"\0" + previous + raw, 1)
        png = _SIGNATURE + _chunk(b"IHDR", ihdr) + extra + _chunk(b"IDAT", data)
        with Image.open(io.BytesIO(png + _chunk(b"IEND", b""))) as im:
            im.load()
            strip = im.crop((0, 1, width, n + 1))
            info_transparency = im.info.get("transparency")
        previous = strip.crop((0, n - 1, width, n)).tobytes()
        if info_transparency is not None:
            strip.info["transparency"] = info_transparency
        strip = _flatten(strip)
        small = strip.reduce(factor) if factor > 1 else strip
        if out is None:
            out = Image.new("RGB", (math.ceil(width / factor), math.ceil(height / factor)))
        out.paste(small, (0, y // factor))
        y += n
    if out is None or y != height:
        raise ValueError(f"PNG data ends after {y} of {height} rows")
    return out


def _flatten(im: Any) -> Any:
    """RGB, with any transparency flattened on white (as ``images.prepare_image`` does)."""
    from PIL import Image

    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        rgb = Image.new("RGB", rgba.size, (255, 255, 255))
        rgb.paste(rgba, mask=rgba.getchannel("A"))
        return rgb
    return im.convert("RGB")
