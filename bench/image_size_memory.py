"""Does the peak memory of `dermasynth generate` depend on the size of the source images?
(issue 11: a 12000 x 12000 source peaked at 1.3 GiB with one such image, 4.5 GiB with four.)

Plans the same number of images twice, once as 1024 px JPEGs and once as 12000 x 12000 JPEGs,
and runs `dermasynth generate` (the default Gemini 3.x model, fake server on 127.0.0.1) on each
in a child process, side by side in one run. Prints the peak RSS of the generate process and of
its largest child (the image workers), and the ratio big / small (target: within 10%).

    python bench/image_size_memory.py [--images 8] [--side 12000]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support
from dermasynth_builder.plan import make_plan
from tests.support import scale
from tests.support.fake_gemini import FakeGemini
from tests.support.measure import run_cli

KEY = "bench-key"


def sources(tmp: Path, images: int, side: int, fmt: str) -> Path:
    """``images`` bcn20000 images, every one a ``side`` px JPEG or PNG (one file, copied)."""
    roots = scale.build(tmp / f"src-{side}-{fmt}", {"bcn20000": images}, image_size=64)
    root = roots["bcn20000"]
    files = sorted(p for p in root.rglob("*.jpg"))
    big = tmp / f"one-{side}.{fmt}"
    # drawn in a child process: a child forked from a bench that once held the big image
    # would report that memory as its own peak (Linux keeps ru_maxrss across exec)
    subprocess.run([sys.executable, __file__, "--draw", str(files[0]), str(big), str(side)])
    for path in files:
        shutil.copyfile(big, path)
    return root


def draw(src: str, dest: str, side: str) -> None:
    with Image.open(src) as im:
        big = im.convert("RGB").resize((int(side), int(side)), Image.Resampling.BILINEAR)
    if dest.endswith(".jpg"):
        big.save(dest, quality=90)
    else:
        big.save(dest)


def measure(tmp: Path, images: int, side: int, concurrency: int, fmt: str) -> tuple:
    root = sources(tmp, images, side, fmt)
    run = tmp / f"run-{side}-{fmt}"
    make_plan([("bcn20000", root)], run)
    with FakeGemini(keep_image_data=False) as fake:
        env = {"GEMINI_API_KEY": KEY, "GOOGLE_GEMINI_BASE_URL": fake.url}
        wall, peak = run_cli("generate", str(run), "--concurrency", str(concurrency), env=env)
        calls = fake.stats["ok"]
    size = (tmp / f"one-{side}.{fmt}").stat().st_size
    return wall, peak, calls, size


def main() -> None:
    if sys.argv[1:2] == ["--draw"]:
        return draw(*sys.argv[2:5])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--side", type=int, default=12000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--formats", default="jpg,png")
    args = parser.parse_args()
    for fmt in args.formats.split(","):
        with tempfile.TemporaryDirectory(prefix="dermasynth-imgmem-") as tmp:
            small = measure(Path(tmp), args.images, 1024, args.concurrency, fmt)
            big = measure(Path(tmp), args.images, args.side, args.concurrency, fmt)
        for side, (wall, peak, calls, size) in ((1024, small), (args.side, big)):
            print(
                f"{args.images} {fmt.upper()} sources of {side} x {side} px "
                f"({size / 2**20:.1f} MiB each): {calls} calls in {wall:.1f} s, "
                f"peak RSS {peak / 2**20:.0f} MiB"
            )
        print(
            f"{fmt.upper()}: peak memory of generate, {args.side} px / 1024 px sources = "
            f"{big[1] / small[1]:.3f} (target: within 10%, <= 1.10)"
        )


if __name__ == "__main__":
    main()
