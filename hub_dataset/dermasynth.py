"""DermaSynth as a `datasets.GeneratorBasedBuilder`: curated pairs joined with their images.

`datasets` >= 4 no longer runs dataset scripts, so users never load this file: `dermasynth
package` runs it per source and publishes the Parquet it writes, which plain
`load_dataset("<org>/dermasynth", "<config>")` reads. Configs: `all` (default) and one per source.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import datasets
from PIL import Image

from dermasynth_builder.sources.registry import SOURCE_NAMES, license_for

SOURCES = SOURCE_NAMES  # one config per source, in the registry's order
_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP")


class StoredFeatures(datasets.Features):
    """Features whose examples arrive already in storage form.

    `_generate_examples` yields exactly what Arrow stores (str, int, bool or None, and images as
    ``{"bytes", "path"}``), so the generic per-example cast-and-encode, which walks every field
    of every row and costs about half of the build time, has nothing to do: it is skipped.
    """

    def encode_example(self, example: dict[str, Any]) -> dict[str, Any]:
        return example


FEATURES = StoredFeatures(
    {
        "id": datasets.Value("string"),
        "image": datasets.Image(),
        "image_id": datasets.Value("string"),
        "source": datasets.Value("string"),
        "modality": datasets.Value("string"),
        "task": datasets.Value("string"),
        "question_type": datasets.Value("string"),
        "self_instruct": datasets.Value("bool"),
        "question": datasets.Value("string"),
        "answer": datasets.Value("string"),
        "diagnosis": datasets.Value("string"),
        "malignancy": datasets.Value("string"),
        "age": datasets.Value("int32"),
        "sex": datasets.Value("string"),
        "anatomic_site": datasets.Value("string"),
        "fitzpatrick_skin_type": datasets.Value("string"),
        "group_id": datasets.Value("string"),
        "license": datasets.Value("string"),
        "attribution": datasets.Value("string"),
        "model": datasets.Value("string"),
        "template_version": datasets.Value("string"),
        "label_consistent": datasets.Value("bool"),
        "malignancy_consistent": datasets.Value("bool"),
    }
)


_TEXT = [name for name in FEATURES if name != "image"]


class DermaSynthConfig(datasets.BuilderConfig):
    """One source (or ``all``) of a curated run folder."""

    def __init__(
        self,
        *,
        run_dir: str = "",
        pairs_file: str | None = None,
        max_image_side: int | None = 1024,
        test_fraction: float = 0.0,
        split_seed: int = 0,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.run_dir = run_dir
        self.pairs_file = pairs_file  # this config's pairs alone, to skip reading the others
        self.max_image_side = max_image_side
        self.test_fraction = test_fraction
        self.split_seed = split_seed


def in_test(source: str, group_id: str | None, image_id: str, fraction: float, seed: int) -> bool:
    """Group-aware split: every image of a patient, lesion or case falls on the same side."""
    if fraction <= 0:
        return False
    key = f"{seed}|{source}|{group_id or image_id}".encode()
    return int(hashlib.sha256(key).hexdigest()[:15], 16) / 16**15 < fraction


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


def image_bytes(path: Path, max_side: int | None) -> dict[str, Any]:
    """The image as stored bytes: the original file when it fits (or ``max_side`` is None),
    else re-encoded as JPEG with its longest side ``max_side``."""
    data = path.read_bytes()
    if max_side is None:
        return {"bytes": data, "path": path.name}
    size = header_size(data)
    if size is not None and max(size) <= max_side:
        return {"bytes": data, "path": path.name}
    with Image.open(io.BytesIO(data), formats=_FORMATS) as im:
        if max(im.size) <= max_side:
            return {"bytes": data, "path": path.name}
        if im.mode in ("RGBA", "LA", "P"):
            im = im.convert("RGBA")
            rgb = Image.new("RGB", im.size, (255, 255, 255))
            rgb.paste(im, mask=im.getchannel("A"))
        else:
            rgb = im.convert("RGB")
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        rgb.save(buf, "JPEG", quality=90)
        return {"bytes": buf.getvalue(), "path": f"{path.stem}.jpg"}


class DermaSynth(datasets.GeneratorBasedBuilder):
    """Synthetic dermatology image-text pairs, one config per source."""

    VERSION = datasets.Version("1.0.0")
    BUILDER_CONFIG_CLASS = DermaSynthConfig
    BUILDER_CONFIGS = [
        DermaSynthConfig(name="all", description="Every source."),
        *(DermaSynthConfig(name=s, description=f"Pairs from {s}.") for s in SOURCES),
    ]
    DEFAULT_CONFIG_NAME = "all"

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description="Synthetic dermatology captions and question/answer pairs with images.",
            features=FEATURES,
        )

    def _split_generators(self, dl_manager: Any) -> list[datasets.SplitGenerator]:
        """Group the pairs by image explicitly (their order in the file does not matter), so
        each image lands in one split and is read and encoded once."""
        cfg = self.config
        run = Path(cfg.run_dir)
        info = json.loads((run / "run.json").read_text(encoding="utf-8"))
        roots = {k: v["root"] for k, v in info["plan"]["sources"].items()}
        splits: dict[str, dict[tuple[str, str], list[dict[str, Any]]]] = {"train": {}, "test": {}}
        side_of: dict[tuple[str, str], str] = {}
        with open(cfg.pairs_file or run / "pairs.jsonl", encoding="utf-8") as fh:
            for line in fh:
                if not line.endswith("\n"):
                    continue  # a torn last line is no pair
                pair = json.loads(line)
                if cfg.name != "all" and pair["source"] != cfg.name:
                    continue
                license_for(pair.get("license"))  # an unknown licence is an error, not a guess
                key = (pair["source"], pair["image_id"])
                side = side_of.get(key)
                if side is None:
                    test = in_test(
                        pair["source"],
                        pair.get("group_id"),
                        pair["image_id"],
                        cfg.test_fraction,
                        cfg.split_seed,
                    )
                    side = side_of[key] = "test" if test else "train"
                splits[side].setdefault(key, []).append(pair)
        return [
            datasets.SplitGenerator(
                name=name, gen_kwargs={"images": list(groups.values()), "roots": roots}
            )
            for name, groups in splits.items()
            if groups
        ]

    def _generate_examples(self, images: list[list[dict[str, Any]]], roots: dict[str, str]):
        for pairs in images:  # every pair of one image: the image is read once
            first = pairs[0]
            path = Path(roots[first["source"]]) / first["image_path"]
            image = image_bytes(path, self.config.max_image_side)
            for pair in pairs:
                row = {name: pair.get(name) for name in _TEXT}
                row["image"] = image
                yield pair["id"], row
