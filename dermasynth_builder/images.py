"""Fast image checks: catch missing, empty, truncated and non-image files without decoding pixels.

A full decode of 45k images takes minutes; reading the header with Pillow plus the file's last
bytes (JPEG end-of-image marker, PNG IEND chunk) takes milliseconds and catches the broken
downloads that real collections contain (SCIN warns of truncated files).
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

_TAIL = 64
# Pillow refuses to decode past twice its MAX_IMAGE_PIXELS (a decompression bomb); we skip such
# images with a reason at read time instead of crashing `sources check` or `plan`.
MAX_PIXELS = 178_956_970


def check_image(path: str | os.PathLike[str]) -> str | None:
    """Return why the file at ``path`` is not a usable image, or ``None`` if it is.

    The reason is a short phrase: "zero bytes", "not an image", "truncated", "too large", or an
    OS error.
    """
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        return exc.strerror or "cannot stat"
    if size == 0:
        return "zero bytes"
    from PIL import Image, UnidentifiedImageError  # not at the top: keeps `--help` light

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DecompressionBombWarning: we check the size below
            with Image.open(path) as im:
                fmt = im.format
                width, height = im.size
    except Image.DecompressionBombError:
        return f"too large (over {MAX_PIXELS:,} pixels)"
    except UnidentifiedImageError:
        return "not an image"
    except (OSError, SyntaxError, ValueError) as exc:
        return f"bad header ({exc})"
    if width <= 0 or height <= 0:
        return "empty image"
    if width * height > MAX_PIXELS:
        return f"too large ({width}x{height} pixels, over {MAX_PIXELS:,})"
    with open(path, "rb") as fh:
        fh.seek(max(0, size - _TAIL))
        tail = fh.read().rstrip(b"\x00\r\n ")
    if fmt == "JPEG" and b"\xff\xd9" not in tail[-_TAIL:]:
        return "truncated"
    if fmt == "PNG" and b"IEND" not in tail[-16:]:
        return "truncated"
    return None


def index_files(root: Path, suffixes: tuple[str, ...]) -> dict[str, str]:
    """Map each file name (and its stem) under ``root`` to its path relative to ``root``.

    Official archives nest folders differently between releases and unzip tools (PAD-UFES-20's
    ``imgs_part_1/imgs_part_1/``, BCN20000's ``BCN_20k_train/bcn_20k_train/``); indexing once by
    name finds an image wherever it sits. The first path in sorted order wins on a name clash.
    """
    found: dict[str, str] = {}
    suffixes = tuple(s.lower() for s in suffixes)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        for name in sorted(filenames):
            if not name.lower().endswith(suffixes):
                continue
            rel = name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")
            found.setdefault(name, rel)
            found.setdefault(os.path.splitext(name)[0], rel)
    return found


def image_tokens(width: int, height: int) -> int:
    """Gemini 2.x input tokens for one image (the tile rule; see ``pricing.tile_tokens``)."""
    from .pricing import tile_tokens

    return tile_tokens(width, height)


# Formats the Gemini API takes as inline image data; anything else is converted to JPEG.
API_FORMATS = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "HEIF": "image/heif",
    "HEIC": "image/heic",
}
# Inline data travels base64-encoded (4/3 larger) in a request capped at 20 MB: originals above
# this many bytes are re-encoded instead.
INLINE_BYTES = 14_000_000


@dataclass(frozen=True, slots=True)
class PreparedImage:
    """Upload-ready image bytes; ``original`` when they are the file's own bytes."""

    data: bytes
    mime_type: str
    width: int
    height: int
    original: bool = False


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(width, height) from the header alone (no pixel decode)."""
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def scaled_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size ``prepare_image`` gives an image of this size (aspect kept, longest side capped)."""
    if max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def load_image(
    path: str | os.PathLike[str],
    max_side: int,
    keep_original: bool = False,
    byte_limit: int = INLINE_BYTES,
) -> PreparedImage:
    """The image as sent: with ``keep_original`` the file's own bytes when the API takes the
    format, the longest side is within ``max_side`` and the bytes fit a request (no decode, no
    re-encode); otherwise RGB JPEG downscaled to ``max_side`` (``prepare_image``)."""
    if keep_original:
        from PIL import Image

        with Image.open(path) as im:
            fmt, (width, height) = im.format, im.size
        mime = API_FORMATS.get(fmt or "")
        if mime and max(width, height) <= max_side and os.path.getsize(path) <= byte_limit:
            with open(path, "rb") as fh:
                return PreparedImage(fh.read(), mime, width, height, original=True)
    data, width, height = prepare_image(path, max_side)
    return PreparedImage(data, "image/jpeg", width, height)


def prepare_image(
    path: str | os.PathLike[str], max_side: int = 768, quality: int = 85
) -> tuple[bytes, int, int]:
    """Load an image for upload: RGB (alpha flattened on white), longest side at most
    ``max_side`` (768 px is one Gemini 2.x tile), encoded as JPEG. Returns (bytes, width,
    height)."""
    from PIL import Image

    with Image.open(path) as im:
        im.draft("RGB", (max_side, max_side))  # JPEG: decode at reduced scale, much faster
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            rgb = Image.new("RGB", rgba.size, (255, 255, 255))
            rgb.paste(rgba, mask=rgba.getchannel("A"))
        else:
            rgb = im.convert("RGB")
    if max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", quality=quality)
    return buf.getvalue(), rgb.width, rgb.height
