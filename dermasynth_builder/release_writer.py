"""Write a split's release rows to Parquet with pyarrow: the files `package` publishes.

The rows come from the hub builder (`DermaSynth.examples`), already in storage form; they are
written as `datasets` >= 5 writes an image dataset's Parquet (and as its `download_and_prepare`
would, file for file: `tests/test_package_datasets.py` checks the tables and the features it
records are the same): row groups of ``ROW_GROUP`` rows, the features in the schema metadata
(so stock `load_dataset` gives typed images and labels), image bytes stored plain and
uncompressed, other columns dictionary-encoded with snappy, content-defined chunking (so a
re-push of a changed release uploads only what changed) and a page index. A new file starts once
a file holds ``max_shard_size`` bytes of Arrow data, as `datasets` shards.

Going past `datasets`' generic writer skips its per-batch work (typing every column from Python
objects, then re-reading every image's bytes to embed files, which these rows do not reference).
No `datasets` import here: the features come in from the builder.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .release import size_in_bytes

__all__ = ["column_options", "write_split"]

# `datasets.config.DEFAULT_CDC_OPTIONS` (5.x): chunks the Hub's storage deduplicates.
CDC = {"min_chunk_size": 256 * 1024, "max_chunk_size": 1024 * 1024, "norm_level": 0}


def _leaves(path: str, pa_type: pa.DataType) -> list[str]:
    """Parquet's leaf column paths under a column (``images.list.element.bytes``...)."""
    if pa.types.is_struct(pa_type):
        return [leaf for f in pa_type for leaf in _leaves(f"{path}.{f.name}", f.type)]
    if pa.types.is_list(pa_type) or pa.types.is_large_list(pa_type):
        return _leaves(f"{path}.list.element", pa_type.value_type)
    return [path]


def column_options(schema: pa.Schema, binary_columns: Iterable[str]) -> dict[str, Any]:
    """Per-leaf Parquet options: ``binary_columns`` (the images) plain and uncompressed (JPEG
    and PNG bytes do not compress), every other leaf dictionary-encoded with snappy."""
    binary = set(binary_columns)
    compression: dict[str, str] = {}
    use_dictionary: list[str] = []
    encoding: dict[str, str] = {}
    for field in schema:
        for leaf in _leaves(field.name, field.type):
            compression[leaf] = "none" if field.name in binary else "snappy"
            if field.name in binary:
                encoding[leaf] = "PLAIN"
            else:
                use_dictionary.append(leaf)
    return {
        "compression": compression,
        "use_dictionary": use_dictionary,
        "column_encoding": encoding,
    }


def _cdc_supported() -> bool:
    return int(pa.__version__.split(".")[0]) >= 21  # pyarrow added it in 21.0


class _Shards:
    """Parquet files ``<prefix>-00000.parquet``, ``-00001``..., a new one past ``max_bytes``."""

    def __init__(self, prefix: Path, schema: pa.Schema, options: dict[str, Any], max_bytes: int):
        self.prefix, self.schema, self.options, self.max_bytes = prefix, schema, options, max_bytes
        self.files: list[str] = []
        self.writer: pq.ParquetWriter | None = None
        self.bytes_in_file = 0

    def write(self, table: pa.Table) -> None:
        if self.writer is not None and self.bytes_in_file > self.max_bytes:
            self.close()
        if self.writer is None:
            path = f"{self.prefix}-{len(self.files):05d}.parquet"
            self.files.append(path)
            self.writer = pq.ParquetWriter(path, self.schema, **self.options)
            if "use_content_defined_chunking" in self.options:
                self.writer.add_key_value_metadata({"content_defined_chunking": json.dumps(CDC)})
            self.bytes_in_file = 0
        self.writer.write_table(table, row_group_size=max(1, table.num_rows))
        self.bytes_in_file += table.nbytes

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def write_split(
    rows: Iterable[dict[str, Any]],
    schema: pa.Schema,
    prefix: Path,
    *,
    row_group: int,
    max_shard_size: str | int,
    binary_columns: Iterable[str] = ("images",),
) -> dict[str, Any]:
    """Write ``rows`` (storage form) to ``<prefix>-SSSSS.parquet`` files in row groups of
    ``row_group`` rows. ``schema`` carries the features as metadata (`Features.arrow_schema`).

    Returns the files, the rows, the Arrow bytes written (as `datasets` counts them) and how many
    rows hold a re-encoded image."""
    options: dict[str, Any] = {"write_page_index": True, **column_options(schema, binary_columns)}
    if _cdc_supported():
        options["use_content_defined_chunking"] = CDC
    shards = _Shards(prefix, schema, options, size_in_bytes(max_shard_size))
    n = nbytes = reencoded = 0

    def flush(batch: list[dict[str, Any]]) -> None:
        nonlocal n, nbytes, reencoded
        table = pa.Table.from_pylist(batch, schema=schema)
        shards.write(table)
        n, nbytes, reencoded = n + table.num_rows, nbytes + table.nbytes, reencoded + _count(table)

    batch: list[dict[str, Any]] = []
    try:
        for row in rows:
            batch.append(row)
            if len(batch) == row_group:
                flush(batch)
                batch = []
        if batch or not shards.files:  # an empty split still gets a file with the schema
            flush(batch)
    finally:
        shards.close()
    return {"files": shards.files, "rows": n, "nbytes": nbytes, "reencoded": reencoded}


def _count(table: pa.Table) -> int:
    if "image_reencoded" not in table.column_names:
        return 0
    return pc.sum(table.column("image_reencoded")).as_py() or 0
