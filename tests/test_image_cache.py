"""The prepared-image cache (issue 14): an image a tile model needs decoded, downscaled and
re-encoded is prepared once, in a worker process, kept under RUN/cache/images/<plan digest>,
reused after a kill -9 and a resume, and removed when the run is done or planned again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

from dermasynth_builder.plan import make_plan
from tests.support import scale
from tests.support.fake_gemini import FakeGemini
from tests.support.synthetic import draw_lesion, encode_jpeg

KEY = "test-key-cache-1208"
TILE = "gemini-2.0-flash"  # every image is prepared (downscaled to 768 px and re-encoded)


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def cached_files(run):
    folder = run / "cache" / "images"
    return sorted(folder.rglob("*.jpg")) if folder.is_dir() else []


def cli(run, fake, *extra):
    env = {**os.environ, "GEMINI_API_KEY": KEY, "GOOGLE_GEMINI_BASE_URL": fake.url}
    cmd = [sys.executable, "-m", "dermasynth_builder", "generate", str(run), "--model", TILE]
    return cmd + ["--retry-base-delay", "0.01", *extra], env


def test_prepared_images_survive_a_kill_are_reused_and_removed_when_done(tmp_path):
    roots = scale.build(tmp_path / "src", {"hiba": 6}, image_size=1024)
    run = tmp_path / "run"
    make_plan(list(roots.items()), run)
    planned = [r["id"] for r in lines(run / "requests.jsonl")]
    with FakeGemini(latency=30.0, keep_image_data=False) as fake:  # calls hang: kill mid-run
        cmd, env = cli(run, fake, "--concurrency", "8")
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while len(cached_files(run)) < 6:  # every image prepared, every call in flight
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    kept = cached_files(run)
    assert len(kept) == 6 and not list((run / "cache").rglob("*.tmp"))
    # mark the cached copies: a resumed run must send them, not prepare the images again
    marker = encode_jpeg(draw_lesion(7, 40))
    for path in kept:
        path.write_bytes(marker)
    with FakeGemini(keep_image_data=False) as fake:
        cmd, env = cli(run, fake)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        sizes = [size for entry in fake.log for size in entry["image_sizes"]]
    assert done.returncode == 0, done.stderr
    assert sizes == [(40, 40)] * 6  # every call sent the cached copy
    outcomes = Counter(r["id"] for r in lines(run / "responses.jsonl"))
    assert outcomes == Counter(planned)
    assert not (run / "cache").exists()  # the run is done: the cache is gone


def test_a_new_plan_drops_the_old_plans_cache(tmp_path):
    roots = scale.build(tmp_path / "src", {"hiba": 4}, image_size=1024)
    run = tmp_path / "run"
    make_plan(list(roots.items()), run, limit=2)
    with FakeGemini(keep_image_data=False) as fake:
        fake.enqueue("status", code=403, message="stop here")  # the run stops, unfinished
        cmd, env = cli(run, fake, "--concurrency", "1")
        assert subprocess.run(cmd, env=env, capture_output=True).returncode == 2
        first = {p.parent.name for p in cached_files(run)}
        assert len(first) == 1
        make_plan(list(roots.items()), run, limit=3, fresh=True)  # a different plan
        fake.enqueue("status", code=403, message="stop here")
        assert subprocess.run(cmd, env=env, capture_output=True).returncode == 2
        second = {p.parent.name for p in cached_files(run)}
    assert len(second) == 1 and second != first
    assert sorted(p.name for p in (run / "cache" / "images").iterdir()) == sorted(second)


def test_image_workers_reuse_pixel_memory_and_send_the_same_bytes(tmp_path):
    """An image worker keeps freed pixel blocks for the next image (fresh pages cost a quarter
    of a 1024 px JPEG's CPU), and an RGB JPEG is resized and encoded as decoded: the same bytes
    as converting a copy first, as the code before did."""
    import io

    from PIL import Image

    from dermasynth_builder import images

    path = tmp_path / "a.jpg"
    path.write_bytes(encode_jpeg(draw_lesion(3, 1024, "dermoscopic"), 95))
    pool = images.pool()
    try:
        assert pool.submit(Image.core.get_blocks_max).result() == images.WORKER_BLOCKS
        data, width, height = pool.submit(images.prepare_image, str(path), 768).result()
    finally:
        images.reset_pool()
    with Image.open(path) as im:
        im.draft("RGB", (768, 768))
        rgb = im.convert("RGB")
    rgb.thumbnail((768, 768), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", quality=85)
    assert (width, height) == (768, 768)
    assert data == buf.getvalue()
