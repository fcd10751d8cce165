"""DermaSynth as a `datasets.GeneratorBasedBuilder`: one row per image, with its pairs.

`datasets` >= 4 no longer runs dataset scripts, so users never load this file: `dermasynth
package` runs it per source and publishes the Parquet it writes, which plain
`load_dataset("<org>/dermasynth", "<config>")` reads. Configs: `all` (default) and one per source.

A row is one image: the image stored once (``images``, a list of one, as TRL reads it), its
record's fields, its ``pairs`` and the same pairs as a chat in ``messages`` (TRL's
vision-language format). ``diagnosis`` and ``malignancy`` are `ClassLabel`s over one label space
that `package` computes for the whole release, so every config has the same features.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets

from dermasynth_builder.records import MALIGNANCY, SourceRecord
from dermasynth_builder.release_images import image_bytes
from dermasynth_builder.run.folder import RunFolder
from dermasynth_builder.run.schema import PAIR_RECORD_FIELDS, Pair
from dermasynth_builder.sources.registry import SOURCE_NAMES, license_for

SOURCES = SOURCE_NAMES  # one config per source, in the registry's order
_SCALARS = {"str": "string", "bool": "bool", "int": "int64", "float": "float64"}
# Pair fields that describe the image, not the pair: they live once on the row.
_ROW_FIELDS = {"source", "image_id", *PAIR_RECORD_FIELDS}
CAPTION_PROMPT = "Describe this image."


def pair_features() -> dict[str, datasets.Value]:
    """One ``pairs`` entry: every field of the run's `Pair` row that is about the pair.

    Derived from the dataclass, so scores or flags a later step adds to `Pair` are kept; a field
    whose type is not a scalar is stored as JSON text."""
    out = {}
    for f in dataclasses.fields(Pair):
        if f.name in _ROW_FIELDS:
            continue
        base = str(f.type).replace(" | None", "").replace("None | ", "").strip()
        out[f.name] = datasets.Value(_SCALARS.get(base, "string"))
    return out


def _json_fields() -> set[str]:
    return {
        f.name
        for f in dataclasses.fields(Pair)
        if f.name not in _ROW_FIELDS
        and str(f.type).replace(" | None", "").replace("None | ", "").strip() not in _SCALARS
    }


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


def in_test(source: str, group_id: str | None, image_id: str, fraction: float, seed: int) -> bool:
    """Group-aware split: every image of a patient, lesion or case falls on the same side."""
    if fraction <= 0:
        return False
    key = f"{seed}|{source}|{group_id or image_id}".encode()
    return int(hashlib.sha256(key).hexdigest()[:15], 16) / 16**15 < fraction


def messages_of(pairs: list[Pair]) -> list[dict[str, Any]]:
    """The pairs as one chat in TRL's vision-language format: the image placeholder opens the
    first user turn (one placeholder for the one image), then question/answer turns."""
    turns: list[dict[str, Any]] = []
    for pair in pairs:
        question = pair.question or CAPTION_PROMPT
        content = [{"type": "text", "text": question}]
        if not turns:
            content.insert(0, {"type": "image", "text": None})
        turns.append({"role": "user", "content": content})
        turns.append({"role": "assistant", "content": [{"type": "text", "text": pair.answer}]})
    return turns


def _stream(path: str | Path) -> Iterator[Any]:
    """The rows of a piece file `package` wrote (a stream of pickled lists of rows)."""
    with open(path, "rb") as fh:
        while True:
            try:
                yield from pickle.load(fh)
            except EOFError:
                return


def _read_records(folder: RunFolder, cfg: DermaSynthConfig) -> Iterator[SourceRecord]:
    """The records of this piece's images (written beside it by `package`), else all of them."""
    if not cfg.records_file:
        yield from folder.records()
        return
    for row in _stream(cfg.records_file):
        yield SourceRecord.from_dict(row)


def _read_pairs(folder: RunFolder, cfg: DermaSynthConfig) -> Iterator[Pair]:
    """The typed pairs of this piece (`package` wrote them as `Pair` field tuples, so they are
    parsed once, not once per step), else every pair of the run folder."""
    if not cfg.pairs_file:
        yield from folder.pairs()
        return
    for values in _stream(cfg.pairs_file):
        yield Pair(*values)


class DermaSynth(datasets.GeneratorBasedBuilder):
    """Synthetic dermatology image-text pairs, one row per image, one config per source."""

    VERSION = datasets.Version("2.0.0")
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
        """Group the pairs by image explicitly (their order in the file does not matter), so
        each image lands in one split and is read and encoded once. An image its source puts
        in the official test split always goes to ``test``."""
        cfg = self.config
        folder = RunFolder(cfg.run_dir)
        roots = {k: v["root"] for k, v in folder.info()["plan"]["sources"].items()}
        groups: dict[tuple[str, str], list[Pair]] = {}
        for pair in _read_pairs(folder, cfg):
            if cfg.name != "all" and pair.source != cfg.name:
                continue
            license_for(pair.license)  # an unknown licence is an error, not a guess
            groups.setdefault((pair.source, pair.image_id), []).append(pair)
        records = {
            key: r for r in _read_records(folder, cfg) if (key := (r.source, r.image_id)) in groups
        }
        splits: dict[str, list[tuple[list[Pair], Any]]] = {"train": [], "test": []}
        for key, pairs in groups.items():
            record = records.get(key)
            first = pairs[0]
            official = record.split if record is not None else None
            test = official == "test" or in_test(
                first.source, first.group_id, first.image_id, cfg.test_fraction, cfg.split_seed
            )
            splits["test" if test else "train"].append((pairs, record))
        return [
            datasets.SplitGenerator(name=name, gen_kwargs={"images": images, "roots": roots})
            for name, images in splits.items()
            if images
        ]

    def _generate_examples(self, images: list[tuple[list[Pair], Any]], roots: dict[str, str]):
        cfg = self.config
        label = {name: i for i, name in enumerate(cfg.diagnoses)}
        malignancy = {name: i for i, name in enumerate(MALIGNANCY)}
        as_json = _json_fields()
        entry_names = list(pair_features())
        for pairs, record in images:  # every pair of one image: the image is read once
            first = pairs[0]
            image, reencoded = image_bytes(
                roots[first.source], first.image_path, cfg.max_image_side
            )
            entries = []
            for pair in pairs:
                entry = {name: getattr(pair, name) for name in entry_names}
                for name in as_json:
                    entry[name] = None if entry[name] is None else json.dumps(entry[name])
                entries.append(entry)

            def extra(name: str, default: Any = None, record: Any = record) -> Any:
                return getattr(record, name, default) if record is not None else default

            row = {name: getattr(first, name) for name in PAIR_RECORD_FIELDS}
            del row["image_path"]
            row.update(
                image_id=first.image_id,
                source=first.source,
                images=[image],
                messages=messages_of(pairs),
                pairs=entries,
                diagnosis=label[first.diagnosis] if first.diagnosis is not None else None,
                diagnosis_code=extra("diagnosis_code"),
                diagnosis_hierarchy=list(extra("diagnosis_hierarchy") or []),
                malignancy=malignancy.get(first.malignancy),
                age_approximate=bool(extra("age_approximate", False)),
                fitzpatrick_self_reported=extra("fitzpatrick_self_reported"),
                monk_skin_tone=extra("monk_skin_tone"),
                official_split=extra("split"),
                text_license=cfg.text_license or first.license,
                image_reencoded=reencoded,
            )
            yield f"{first.source}/{first.image_id}", row
