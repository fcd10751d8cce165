"""Fast image checks: catch missing, empty, truncated and non-image files without decoding pixels.

A full decode of 45k images takes minutes; reading the header with Pillow plus the file's last
bytes (JPEG end-of-image marker, PNG IEND chunk) takes milliseconds and catches the broken
downloads that real collections contain (SCIN warns of truncated files).
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


# Images with more pixels than this are not decoded at all (Pillow's own decompression-bomb
# limit): a 30000 x 30000 PNG of 109 KB is a failure with its reason, never a crash.
MAX_PIXELS = 178_956_970


class ImageTooLarge(ValueError):
    """The image has more pixels than ``MAX_PIXELS``: it is skipped, never decoded."""


def _header(path: str | os.PathLike[str]) -> tuple[str | None, int, int]:
    """(format, width, height) from the header; raises ImageTooLarge past ``MAX_PIXELS``."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DecompressionBombWarning: checked below
            with Image.open(path) as im:
                fmt, (width, height) = im.format, im.size
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"image too large: {exc}") from None
    if width * height > MAX_PIXELS:
        raise ImageTooLarge(
            f"image too large: {width} x {height} = {width * height:,} pixels, over the "
            f"{MAX_PIXELS:,} limit"
        )
    return fmt, width, height


def load_image(
    path: str | os.PathLike[str],
    max_side: int,
    keep_original: bool = False,
    byte_limit: int = INLINE_BYTES,
) -> PreparedImage:
    """The image as sent: with ``keep_original`` the file's own bytes when the API takes the
    format, the longest side is within ``max_side`` and the bytes fit a request (no decode, no
    re-encode); otherwise RGB JPEG downscaled to ``max_side`` (``prepare_image``). Raises
    ImageTooLarge for an image over ``MAX_PIXELS``."""
    original = original_bytes(path, max_side, byte_limit) if keep_original else None
    if original is not None:
        return original
    if not keep_original:
        _header(path)
    data, width, height = prepare_image(path, max_side)
    return PreparedImage(data, "image/jpeg", width, height)


def original_bytes(
    path: str | os.PathLike[str], max_side: int, byte_limit: int = INLINE_BYTES
) -> PreparedImage | None:
    """The file's own bytes when they can be sent as they are, else None (to be prepared)."""
    fmt, width, height = _header(path)
    mime = API_FORMATS.get(fmt or "")
    if mime and max(width, height) <= max_side and os.path.getsize(path) <= byte_limit:
        with open(path, "rb") as fh:
            return PreparedImage(fh.read(), mime, width, height, original=True)
    return None


def _draft_side(longest: int, max_side: int) -> int:
    """The side to ask JPEG draft mode for: ``max_side``, unless the decode that gives is
    still over 1.75x the cap; then 3/4 of it, so the decode stays within that bound at the
    price of an image at most 1/4 under the cap."""
    got = longest
    for denominator in (8, 4, 2):
        if longest / denominator >= max_side:
            got = longest / denominator
            break
    return max_side if got <= 1.75 * max_side else max(1, max_side * 3 // 4)


def prepare_image(
    path: str | os.PathLike[str], max_side: int = 768, quality: int = 85
) -> tuple[bytes, int, int]:
    """Load an image for upload: RGB (alpha flattened on white), longest side at most
    ``max_side`` (768 px is one Gemini 2.x tile), encoded as JPEG. Returns (bytes, width,
    height)."""
    from PIL import Image

    from . import png_strips

    info = png_strips.header(path)
    if png_strips.can_strip(info) and info["width"] * info["height"] > 4 * max_side**2:
        # a large PNG: decoded a strip at a time, memory bounded by the output size
        return _encode(png_strips.decode_reduced(path, info, max_side), max_side, quality)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the caller checked the pixel count
        im = Image.open(path)
    with im:
        # JPEG: decode at 1/2, 1/4 or 1/8 scale, so memory and time follow max_side, not the
        # source size (a 12000 px source decodes at 3000 px for a 3072 px cap, not 6000).
        side = _draft_side(max(im.size), max_side)
        im.draft("RGB", (side, side))
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            rgb = Image.new("RGB", rgba.size, (255, 255, 255))
            rgb.paste(rgba, mask=rgba.getchannel("A"))
        elif im.mode == "RGB":  # most JPEGs: resized and encoded as decoded, not copied first
            return _encode(im, max_side, quality)
        else:
            rgb = im.convert("RGB")
    return _encode(rgb, max_side, quality)


def _encode(rgb: Any, max_side: int, quality: int) -> tuple[bytes, int, int]:
    from PIL import Image

    if max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", quality=quality)
    return buf.getvalue(), rgb.width, rgb.height


# -- prepared images: made once per run, in worker processes, kept in a bounded disk cache ----

CACHE_DIR = "cache/images"  # under the run folder
CACHE_LIMIT = 2 * 2**30  # bytes of prepared images kept on disk at most (oldest go first)


def cache_key(path: str | os.PathLike[str], max_side: int) -> str:
    """Names the prepared copy of ``path`` at ``max_side``: changes when the file does."""
    import hashlib

    st = os.stat(path)
    text = f"{os.fspath(path)}\0{st.st_size}\0{st.st_mtime_ns}\0{max_side}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _cache_file(folder: str, key: str) -> str:
    return os.path.join(folder, f"{key}.jpg")


def cached(folder: str, key: str) -> PreparedImage | None:
    """The prepared copy of ``key`` in ``folder``, or None."""
    from PIL import Image

    try:
        with open(_cache_file(folder, key), "rb") as fh:
            data = fh.read()
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
    except (OSError, SyntaxError, ValueError):
        return None
    return PreparedImage(data, "image/jpeg", width, height)


def prepare_cached(path: str, max_side: int, folder: str | None) -> tuple[PreparedImage, str, int]:
    """Prepare ``path`` (decode, downscale, encode) once: from the cache when a copy is there,
    else made now and written atomically to the cache. Runs in a worker process. Returns the
    image, its cache key and the bytes it added to the cache (0 for a hit)."""
    key = cache_key(path, max_side) if folder else ""
    if folder:
        hit = cached(folder, key)
        if hit is not None:
            return hit, key, 0
    _header(path)
    data, width, height = prepare_image(path, max_side)
    image = PreparedImage(data, "image/jpeg", width, height)
    if not folder:
        return image, key, 0
    os.makedirs(folder, exist_ok=True)
    final = _cache_file(folder, key)
    tmp = f"{final}.{os.getpid()}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, final)
    return image, key, len(data)


class ImageCache:
    """The run's prepared-image folder (``RUN/cache/images``), kept under ``limit`` bytes by
    removing the oldest copies first, and removed when the run is done."""

    def __init__(self, folder: str | os.PathLike[str], limit: int = CACHE_LIMIT):
        self.folder = os.fspath(folder)
        self.limit = limit
        self._files: dict[str, int] = {}  # name -> size, oldest first
        self.size = 0
        try:
            entries = sorted(os.scandir(self.folder), key=lambda e: e.stat().st_mtime)
        except FileNotFoundError:
            entries = []
        for entry in entries:
            if entry.name.endswith(".tmp"):  # a writer killed mid-file
                os.unlink(entry.path)
                continue
            self._files[entry.name] = entry.stat().st_size
            self.size += entry.stat().st_size

    def added(self, key: str, size: int) -> None:
        """Account for a copy a worker wrote; trim the oldest past the limit."""
        if size <= 0:
            return
        name = f"{key}.jpg"
        self._files[name] = size
        self.size += size
        while self.size > self.limit and self._files:
            oldest = next(iter(self._files))
            self.size -= self._files.pop(oldest)
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.folder, oldest))

    def clear(self) -> None:
        """Remove the folder and everything in it (the run is done, or planned again)."""
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)
        self._files.clear()
        self.size = 0


_POOL: Any = None
_POOL_SIZE = 0


def pool(workers: int | None = None) -> Any:
    """The process pool that prepares images (``spawn``: safe next to threads and sockets),
    started on first use and shared by every run of this process."""
    global _POOL, _POOL_SIZE
    size = workers or min(2, os.cpu_count() or 1)
    if _POOL is None or size != _POOL_SIZE:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if _POOL is not None:
            _POOL.shutdown(wait=False)
        _POOL = ProcessPoolExecutor(
            size, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker
        )
        _POOL_SIZE = size
    return _POOL


# Pillow frees each image's pixels (decoded, resized) and asks the C allocator afresh for the
# next, which maps new pages: ~2,400 page faults, 4-5 ms of system time, per 1024 px JPEG, a
# quarter of its cost. An image worker keeps up to this many freed 1 MiB blocks for reuse
# instead (Pillow's PILLOW_BLOCK_SIZE / PILLOW_BLOCKS_MAX, which win when set).
WORKER_BLOCKS = 32


def _start_worker() -> None:
    """Ctrl-C at a terminal reaches the whole process group: the parent stops the pool, so a
    worker ignores it instead of printing a traceback. Pillow reuses image memory here."""
    import signal

    from PIL import Image

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if "PILLOW_BLOCK_SIZE" not in os.environ and "PILLOW_BLOCKS_MAX" not in os.environ:
        Image.core.set_block_size(2**20)
        Image.core.set_blocks_max(WORKER_BLOCKS)


def reset_pool() -> None:
    """Forget a broken pool; the next ``pool()`` starts a fresh one."""
    global _POOL
    if _POOL is not None:
        _POOL.shutdown(wait=False, cancel_futures=True)
    _POOL = None
