"""Does the engine's memory grow with the number of images? Peak traced memory (tracemalloc) of
one in-process `generate` over N and 3N images (1024 px JPEG q95, sent as original bytes, as for
Gemini 3.x), with a scripted backend that answers at once, side by side in one run.

Each call's image is freed when the call is answered, so the image bytes held at once are set by
the calls in flight (--concurrency), not by the run's length: that ratio should stay near 1 (it
was ~3 when every call kept its image until the run ended, per issue 14). Also prints how many
times each image was prepared under --one-question-per-request (should be 1).

    python bench/image_memory.py [--images 300] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support
from dermasynth_builder.engine import Engine, GenerateOptions
from dermasynth_builder.plan import make_plan
from tests.fakes import FakeBackend
from tests.support import scale


class _Counting(FakeBackend):
    """Answers at once as a Gemini 3.x model would be priced; records each shared image and the
    most image bytes held at any moment."""

    def __init__(self) -> None:
        super().__init__()
        self.model = "gemini-3.1-flash-lite"  # a media-resolution profile: original bytes
        self.prepared: dict[int, object] = {}
        self.held_peak = 0

    async def generate(self, call):  # noqa: ANN001, ANN201
        self.prepared[id(call.source)] = call.source
        held = sum(len(s._value.data) for s in self.prepared.values() if s.held)
        self.held_peak = max(self.held_peak, held)
        return await super().generate(call)


def peak_mib(tmp: Path, images: int, concurrency: int, one_question: bool = False) -> tuple:
    roots = scale.build(tmp / f"src-{images}", {"bcn20000": images}, image_size=1024, quality=95)
    run = tmp / f"run-{images}-{one_question}"
    make_plan(list(roots.items()), run)
    backend = _Counting()
    options = GenerateOptions(
        backend="offline",
        model="gemini-3.1-flash-lite",
        concurrency=concurrency,
        one_question_per_request=one_question,
    )
    with Engine(run, options, backend=backend) as engine:
        tracemalloc.start()
        engine.run_sync()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    prepared = sorted({s.prepared for s in backend.prepared.values()})
    held = sum(call.holds_image for call in backend.history)
    return peak / 2**20, len(backend.history), prepared, held, backend.held_peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dermasynth-mem-") as tmp:
        small = peak_mib(Path(tmp), args.images, args.concurrency)
        large = peak_mib(Path(tmp), 3 * args.images, args.concurrency)
        per_q = peak_mib(Path(tmp), args.images, args.concurrency, one_question=True)
    for n, r in ((args.images, small), (3 * args.images, large)):
        print(
            f"{n:,} images: {r[1]:,} calls; most image bytes held at once {r[4]:.1f} MiB; "
            f"peak traced memory {r[0]:.1f} MiB"
        )
    print(
        f"(a) image bytes held at once, 3x the images / 1x = {large[4] / small[4]:.2f} (flat: ~1;"
        f" calls still holding an image after the run: {small[3] + large[3]})"
    )
    print(
        f"(b) peak traced memory, 3x / 1x = {large[0] / small[0]:.2f} (the rest of the growth: "
        "the pending calls' planned requests, read up front)"
    )
    print(
        f"(c) --one-question-per-request: {per_q[1]:,} calls; times each image was prepared: "
        f"{per_q[2]} (target [1])"
    )


if __name__ == "__main__":
    main()
