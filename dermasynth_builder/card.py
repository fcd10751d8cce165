"""The release's README.md: YAML metadata built with huggingface_hub's DatasetCardData, and a
body rendered from ``dataset_card.md`` (Jinja) with the run's provenance and curation report.

Titles, licences and citations come from the source registry; a licence it does not know is an
error, so a card never mislabels one."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCardData

from .paths import data_path
from .prompts import make_env
from .release import Release, builder_module
from .sources.registry import License, license_for, source_info


def source_licenses(release: Release, source: str) -> list[License]:
    """The licences of a source's rows (its registry licence when none was counted)."""
    names = release.licenses.get(source) or {source_info(source).license}
    return [license_for(name) for name in sorted(names)]


def size_category(n: int) -> str:
    for limit, label in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
    ):
        if n < limit:
            return label
    return "1M<n<10M"


def _splits(rows: dict[str, int], nbytes: dict[str, int]) -> list[dict[str, Any]]:
    return [
        {"name": s, "num_bytes": nbytes.get(s, 0), "num_examples": n} for s, n in rows.items() if n
    ]


def card_data(release: Release, features: Any) -> DatasetCardData:
    """The YAML header: one config per source plus ``all`` (default) over every source's files."""
    rows_all: Counter = Counter()
    bytes_all: Counter = Counter()
    for config, rows in release.rows.items():
        rows_all.update(rows)
        bytes_all.update(release.nbytes.get(config, {}))
    glob = [{"split": s, "path": f"data/*/{s}-*.parquet"} for s in ("train", "test") if rows_all[s]]
    configs = [{"config_name": "all", "default": True, "data_files": glob}]
    infos = [
        {
            "config_name": "all",
            "features": features._to_yaml_list(),
            "splits": _splits(dict(rows_all), dict(bytes_all)),
        }
    ]
    for source, rows in release.rows.items():
        files = [
            {"split": s, "path": f"data/{source}/{s}-*.parquet"}
            for s in ("train", "test")
            if rows.get(s)
        ]
        configs.append({"config_name": source, "data_files": files})
        infos.append(
            {
                "config_name": source,
                "features": features._to_yaml_list(),
                "splits": _splits(rows, release.nbytes.get(source, {})),
            }
        )
    licenses = {lic for s in release.rows for lic in source_licenses(release, s)}
    ids = sorted({lic.hub_id for lic in licenses})
    other = sorted((lic for lic in licenses if lic.hub_id == "other"), key=lambda x: x.name)
    extra: dict[str, Any] = {}
    if other:  # the Hub takes one name and link for "other"; the body lists every licence
        extra = {
            "license_name": ",".join(lic.hub_name or lic.name for lic in other),
            "license_link": other[0].link,
        }
    return DatasetCardData(
        pretty_name="DermaSynth (DermaSynth builder release)",
        license=ids if len(ids) > 1 else ids[0],
        language=["en"],
        task_categories=["image-to-text", "visual-question-answering"],
        tags=["dermatology", "medical", "skin-lesion", "synthetic", "image-text"],
        size_categories=[size_category(sum(rows_all.values()))],
        source_datasets=[source_info(s).homepage for s in release.rows],
        configs=configs,
        dataset_info=infos,
        **extra,
    )


def render_card(run: Path, info: dict[str, Any], release: Release) -> str:
    """The README.md of ``release``, made from RUN's run.json and report.json."""
    module = builder_module()
    data = card_data(release, module.FEATURES)
    report_path = run / "report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    sources = []
    for name, splits in release.rows.items():
        entry = source_info(name)
        licenses = source_licenses(release, name)
        sources.append(
            {
                "name": name,
                "title": entry.title,
                "license": ", ".join(lic.name for lic in licenses),
                "licenses": [{"name": x.name, "link": x.link} for x in licenses],
                "attribution": entry.attribution,
                "citation": entry.citation,
                "homepage": entry.homepage,
                "images": release.images[name],
                "pairs": sum(splits.values()),
                "splits": splits,
                "modality": ", ".join(
                    f"{m} {n}" for m, n in release.modalities.get(name, Counter()).most_common()
                ),
            }
        )
    plan = info.get("plan", {})
    context = {
        "card_data": data.to_yaml(),
        "pretty_name": data.pretty_name,
        "sources": sources,
        "total_pairs": sum(s["pairs"] for s in sources),
        "total_images": sum(s["images"] for s in sources),
        "models": dict(release.models.most_common()),
        "generation": {"options": {}, **info.get("generation", {})},
        "plan": {
            "seed": plan.get("seed"),
            "recipe": plan.get("recipe"),
            "limit": plan.get("limit"),
        },
        "templates": {"version": "unknown", "digests": {}, **info.get("templates", {})},
        "imported": info.get("import"),
        "curation": info.get("curation", {}),
        "report": {
            "rejected_by_filter": {},
            "label_agreement": [],
            "malignancy_agreement": [],
            **report,
        },
        "figures": release.figures,
        "has_test": any(s["splits"].get("test") for s in sources),
    }
    template = make_env(data_path("dataset_card.md").parent).from_string(
        data_path("dataset_card.md").read_text(encoding="utf-8")
    )
    return template.render(context).strip() + "\n"
