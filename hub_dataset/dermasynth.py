"""DermaSynth as a `datasets.GeneratorBasedBuilder`: one row per image, with its pairs.

`datasets` >= 4 no longer runs dataset scripts, so users never load this file: `dermasynth
package` runs it per source (its `splits` and `examples`, which `_split_generators` and
`_generate_examples` use too) and writes its rows to the Parquet that `download_and_prepare` would
write (`dermasynth_builder.release_writer`), which plain `load_dataset("<org>/dermasynth",
"<config>")` reads. Configs: `all` (default) and one per source.

A row is one image: the image stored once (``images``, a list of one, as TRL reads it), its
record's fields, its ``pairs`` and the same pairs as a chat in ``messages`` (TRL's
vision-language format). ``diagnosis`` and ``malignancy`` are `ClassLabel`s over one label space
that `package` computes for the whole release, so every config has the same features.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import datasets

from dermasynth_builder.records import MALIGNANCY, SourceRecord
from dermasynth_builder.release_images import image_bytes
from dermasynth_builder.release_rows import (
    CAPTION_PROMPT,
    RowMaker,
    in_test,
    messages_of,
    pair_fields,
)
from dermasynth_builder.run.folder import RunFolder
from dermasynth_builder.run.schema import Pair
from dermasynth_builder.sources.registry import SOURCE_NAMES, license_for

SOURCES = SOURCE_NAMES  # one config per source, in the registry's order
# Rows per Parquet row group: what `datasets` (4.0 to 5.2) uses for image datasets, small so the
# Hub's viewer and streaming reads stay cheap. `package` writes row groups of the same size.
ROW_GROUP = 100
__all__ = ["CAPTION_PROMPT", "DermaSynth", "features", "image_bytes", "in_test", "messages_of"]


def pair_features() -> dict[str, datasets.Value]:
    """One ``pairs`` entry: every field of the run's `Pair` row that is about the pair."""
    return {name: datasets.Value(dtype) for name, dtype in pair_fields().items()}


def features(diagnoses: list[str] | tuple[str, ...] = ()) -> datasets.Features:
    """The release's features; ``diagnoses`` is the shared label space of ``diagnosis``."""
    string = datasets.Value("string")
    return StoredFeatures(
        {
            "image_id": string,
            "source": string,
            "images": datasets.List(datasets.Image()),
            "messages": datasets.List(
                {"role": string, "content": datasets.List({"type": string, "text": string})}
            ),
            "pairs": datasets.List(pair_features()),
            "modality": string,
            "diagnosis": datasets.ClassLabel(names=list(diagnoses)),
            "diagnosis_code": string,
            "diagnosis_hierarchy": datasets.List(string),
            "malignancy": datasets.ClassLabel(names=list(MALIGNANCY)),
            "age": datasets.Value("int32"),
            "age_approximate": datasets.Value("bool"),
            "sex": string,
            "anatomic_site": string,
            "fitzpatrick_skin_type": string,
            "fitzpatrick_self_reported": string,
            "monk_skin_tone": datasets.Value("int32"),
            "group_id": string,
            "official_split": string,
            "license": string,
            "text_license": string,
            "attribution": string,
            "image_reencoded": datasets.Value("bool"),
        }
    )


class StoredFeatures(datasets.Features):
    """Features whose examples arrive already in storage form.

    `_generate_examples` yields exactly what Arrow stores (labels as their integer, images as
    ``{"bytes", "path"}``), so the generic per-example cast-and-encode, which walks every field
    of every row, has nothing to do: it is skipped. Should a `datasets` version copy the features
    into a plain `Features`, the stock encoding runs instead and gives the same table (tested
    against the oldest and newest `datasets` the project allows)."""

    def encode_example(self, example: dict[str, Any]) -> dict[str, Any]:
        return example


class DermaSynthConfig(datasets.BuilderConfig):
    """One source (or ``all``) of a curated run folder."""

    def __init__(
        self,
        *,
        run_dir: str = "",
        pairs_file: str | None = None,
        records_file: str | None = None,
        max_image_side: int | None = 1024,
        test_fraction: float = 0.0,
        split_seed: int = 0,
        diagnoses: tuple[str, ...] = (),
        text_license: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.run_dir = run_dir
        self.pairs_file = pairs_file  # this config's pairs alone, to skip reading the others
        self.records_file = records_file  # the records of those pairs' images alone
        self.max_image_side = max_image_side
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        self.diagnoses = tuple(diagnoses)
        self.text_license = text_license  # None: the text's licence follows the image's


def _stream(path: str | Path) -> Iterator[Any]:
    """The rows of a piece file `package` wrote (a stream of pickled lists of rows)."""
    with open(path, "rb") as fh:
        while True:
            try:
                yield from pickle.load(fh)
            except EOFError:
                return


def _read_records(
    folder: RunFolder, cfg: DermaSynthConfig, rows: Iterable[Any] | None = None
) -> Iterator[SourceRecord]:
    """The records of this piece's images: ``rows`` (the `SourceRecord` rows, or parsed
    records.jsonl rows, `package` holds in memory), else the piece's file `package` wrote beside
    it, else every record of the run."""
    if rows is None and not cfg.records_file:
        yield from folder.records()
        return
    for row in _stream(cfg.records_file) if rows is None else rows:
        yield row if isinstance(row, SourceRecord) else SourceRecord.from_dict(row)


def _read_pairs(
    folder: RunFolder, cfg: DermaSynthConfig, pairs: Iterable[Pair] | None = None
) -> Iterator[Pair]:
    """The typed pairs of this piece: ``pairs`` as `package` holds them in memory, else its piece
    file (`Pair` field tuples, so they are parsed once, not once per step), else every pair of
    the run folder."""
    if pairs is not None:
        yield from pairs
        return
    if not cfg.pairs_file:
        yield from folder.pairs()
        return
    for values in _stream(cfg.pairs_file):
        yield Pair(*values)


class DermaSynth(datasets.GeneratorBasedBuilder):
    """Synthetic dermatology image-text pairs, one row per image, one config per source."""

    VERSION = datasets.Version("2.0.0")
    DEFAULT_WRITER_BATCH_SIZE = ROW_GROUP
    BUILDER_CONFIG_CLASS = DermaSynthConfig
    BUILDER_CONFIGS = [
        DermaSynthConfig(name="all", description="Every source."),
        *(DermaSynthConfig(name=s, description=f"Pairs from {s}.") for s in SOURCES),
    ]
    DEFAULT_CONFIG_NAME = "all"

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description="Synthetic dermatology captions and question/answer pairs with images.",
            features=features(self.config.diagnoses),
        )

    def _split_generators(self, dl_manager: Any) -> list[datasets.SplitGenerator]:
        roots, splits = self.splits()
        return [
            datasets.SplitGenerator(name=name, gen_kwargs={"images": images, "roots": roots})
            for name, images in splits.items()
        ]

    def _generate_examples(self, images: list[tuple[list[Pair], Any]], roots: dict[str, str]):
        yield from self.examples(images, roots)

    def splits(
        self, pairs: Iterable[Pair] | None = None, records: Iterable[Any] | None = None
    ) -> tuple[dict[str, str], dict[str, list[tuple[list[Pair], Any]]]]:
        """The image roots, and each non-empty split's images (an image's pairs and its record).

        Pairs are grouped by image explicitly (their order in the file does not matter), so
        each image lands in one split and is read and encoded once. An image its source puts
        in the official test split always goes to ``test``. ``pairs`` and ``records`` (parsed
        rows) are what `package` already holds in memory; else they are read as configured."""
        cfg = self.config
        folder = RunFolder(cfg.run_dir)
        roots = {k: v["root"] for k, v in folder.info()["plan"]["sources"].items()}
        groups: dict[tuple[str, str], list[Pair]] = {}
        known: set[Any] = set()  # licences checked
        for pair in _read_pairs(folder, cfg, pairs):
            if cfg.name != "all" and pair.source != cfg.name:
                continue
            if pair.license not in known:
                license_for(pair.license)  # an unknown licence is an error, not a guess
                known.add(pair.license)
            key = (pair.source, pair.image_id)
            group = groups.get(key)
            if group is None:
                groups[key] = [pair]
            else:
                group.append(pair)
        found = {}
        for record in _read_records(folder, cfg, records):
            if (key := (record.source, record.image_id)) in groups:
                found[key] = record
        splits: dict[str, list[tuple[list[Pair], Any]]] = {"train": [], "test": []}
        for key, pairs_of_image in groups.items():
            record = found.get(key)
            first = pairs_of_image[0]
            official = record.split if record is not None else None
            test = official == "test" or in_test(
                first.source, first.group_id, first.image_id, cfg.test_fraction, cfg.split_seed
            )
            splits["test" if test else "train"].append((pairs_of_image, record))
        return roots, {name: images for name, images in splits.items() if images}

    def examples(
        self, images: list[tuple[list[Pair], Any]], roots: dict[str, str]
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """One row per image, keyed ``source/image_id``, in storage form (see `StoredFeatures`):
        what `_generate_examples` yields, and what `package` writes."""
        cfg = self.config
        maker = RowMaker(cfg.diagnoses, cfg.text_license)
        for pairs, record in images:  # every pair of one image: the image is read once
            first = pairs[0]
            image, reencoded = image_bytes(
                roots[first.source], first.image_path, cfg.max_image_side
            )
            yield f"{first.source}/{first.image_id}", maker.row(pairs, record, image, reencoded)
