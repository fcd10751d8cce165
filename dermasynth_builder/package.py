"""Package: run the hub_dataset builder per source and lay out a Parquet release with its card.

The release is a folder that stock `datasets` loads with no remote code:
``data/<config>/<split>-XXXXX-of-YYYYY.parquet`` per source, and a README whose YAML declares
one config per source plus ``all`` (the default), which globs every source's files, so nothing
is stored twice.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .paths import data_path
from .runfolder import PAIRS, RunFolderError, iter_jsonl, read_run

CONFIG_ORDER = ("derm12345", "bcn20000", "pad_ufes_20", "scin", "hiba")


@dataclass(slots=True)
class Release:
    out: Path
    rows: dict[str, dict[str, int]] = field(default_factory=dict)  # config -> split -> rows
    nbytes: dict[str, dict[str, int]] = field(default_factory=dict)  # config -> split -> bytes
    files: dict[str, list[str]] = field(default_factory=dict)  # config -> parquet paths


def builder_module() -> Any:
    """Import hub_dataset/dermasynth.py (a file, not a package module) by path."""
    path = data_path("hub_dataset") / "dermasynth.py"
    name = "dermasynth_hub_builder"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def package(
    run: Path,
    out: Path,
    *,
    max_image_side: int | None = 1024,
    test_fraction: float = 0.0,
    num_proc: int | None = None,
    max_shard_size: str = "500MB",
    split_seed: int = 0,
) -> Release:
    """Write the Parquet release of RUN's curated pairs to OUT (its data/ is replaced whole)."""
    from .card import render_card  # keeps `datasets` off the import path of the other verbs

    info = read_run(run)
    if not (run / PAIRS).is_file():
        raise RunFolderError(f"{run / PAIRS} not found: run `dermasynth curate` first")
    sources = Counter(row["source"] for row in iter_jsonl(run / PAIRS))
    if not sources:
        raise RunFolderError(f"{run / PAIRS} holds no pairs: nothing to package")
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    module = builder_module()
    out.mkdir(parents=True, exist_ok=True)
    release = Release(out)
    staging = Path(tempfile.mkdtemp(prefix=".package-", dir=out))
    try:
        for source in [s for s in CONFIG_ORDER if s in sources]:
            builder = module.DermaSynth(
                config_name=source,
                cache_dir=str(staging / "cache"),
                dataset_name="dermasynth",
                run_dir=str(run),
                max_image_side=max_image_side,
                test_fraction=test_fraction,
                split_seed=split_seed,
                shards=max(1, num_proc or 1) * 2,
            )
            built = staging / "built" / source
            builder.download_and_prepare(
                output_dir=str(built),
                file_format="parquet",
                max_shard_size=max_shard_size,
                num_proc=num_proc if num_proc and num_proc > 1 else None,
            )
            splits = builder.info.splits.items()
            release.rows[source] = {split: int(v.num_examples) for split, v in splits}
            release.nbytes[source] = {split: int(v.num_bytes) for split, v in splits}
            target = staging / "data" / source
            target.mkdir(parents=True)
            for path in sorted(built.glob("dermasynth-*.parquet")):
                name = path.name.removeprefix("dermasynth-")
                if "-of-" not in name:  # a single shard is written without its numbering
                    name = name.replace(".parquet", "-00000-of-00001.parquet")
                path.rename(target / name)
                release.files.setdefault(source, []).append(f"data/{source}/{name}")
        if (out / "data").exists():
            shutil.rmtree(out / "data")
        (staging / "data").rename(out / "data")
        figures = run / "figures"
        if figures.is_dir():
            shutil.rmtree(out / "figures", ignore_errors=True)
            shutil.copytree(figures, out / "figures")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    (out / "README.md").write_text(render_card(run, info, release), encoding="utf-8")
    return release
