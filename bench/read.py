"""Benchmark reading a source folder: header checks vs fully decoding every image.

Builds a BCN20000-sized folder (18,946 rows, the real collection's size) and times
`Source.read()` (metadata, path checks, Pillow header + tail check) against a baseline that
fully decodes each image, side by side on the same files.

    python bench/read.py [--rows 18946] [--image-size 1024]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support
from dermasynth_builder.sources import get_source
from tests.support import scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=18946)
    parser.add_argument("--image-size", type=int, default=1024, help="BCN images are 1024 px")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dermasynth-read-") as tmp:
        roots = scale.build(Path(tmp), {"bcn20000": args.rows}, image_size=args.image_size)
        root = roots["bcn20000"]
        get_source("bcn20000").read(root)  # warm the page cache for both contenders
        started = time.perf_counter()
        result = get_source("bcn20000").read(root)
        ours = time.perf_counter() - started
        started = time.perf_counter()
        for rec in result.records:
            with Image.open(root / rec.image_path) as im:
                im.load()
        decode = time.perf_counter() - started
    n = len(result.records)
    print(f"read {n:,} rows with header checks: {ours:.2f} s ({n / ours:,.0f} rows/s)")
    print(f"baseline, full decode of the same {n:,} images ({args.image_size} px): {decode:.2f} s")
    print(f"ratio: header check is {decode / ours:.1f}x faster than decoding")


if __name__ == "__main__":
    main()
