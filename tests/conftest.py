"""Shared fixtures: isolated caches, the bundled sample, the real metadata in ../shared."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DERMASYNTH_SHARED", REPO.parent / "shared"))
REAL = SHARED / "data" / "real"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's caches, tokens or keys."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(home / "hf" / "datasets"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for key in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "HF_TOKEN", "OPENAI_API_KEY"):
        monkeypatch.delenv(key, raising=False)


def real(*parts: str) -> Path:
    """A file under shared/data/real, or skip the test saying why."""
    path = REAL.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} (set DERMASYNTH_SHARED to the shared folder)")
    return path


def jpeg_bytes(size: int = 32, color: tuple[int, int, int] = (170, 110, 90)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, "JPEG")
    return buf.getvalue()


def png_bytes(size: int = 32, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (size, size), (150, 100, 80, 255)[: len(mode)]).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def sample_copy(tmp_path):
    """A writable copy of one bundled sample source: ``sample_copy("scin") -> Path``."""
    from dermasynth_builder.paths import sample_root

    def make(source: str) -> Path:
        dest = tmp_path / source
        shutil.copytree(sample_root(source), dest)
        return dest

    return make
