"""The release's README.md: YAML metadata built with huggingface_hub's DatasetCardData, and a
body rendered from ``dataset_card.md`` (Jinja) with the run's provenance and curation report.

Titles, licences and citations come from the source registry; a licence it does not know is an
error, so a card never mislabels one."""

from __future__ import annotations

import json
import re
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


def yaml_features(features: Any) -> list[dict[str, Any]]:
    """The card's ``features:`` list, written from the public feature types (the Hub's YAML
    form: ``dtype``, ``list``, ``struct``, ``class_label``), not `datasets` internals."""
    import datasets

    def inner(feature: Any) -> dict[str, Any]:
        if isinstance(feature, dict):
            return {"struct": [{"name": k, **inner(v)} for k, v in feature.items()]}
        if isinstance(feature, datasets.List):
            sub = inner(feature.feature)
            keys = list(sub)
            out = {"list": sub[keys[0]] if keys in (["dtype"], ["struct"]) else sub}
            if feature.length != -1:
                out["length"] = feature.length
            return out
        if isinstance(feature, datasets.ClassLabel):
            names = {str(i): name for i, name in enumerate(feature.names)}
            return {"dtype": {"class_label": {"names": names}}}
        if isinstance(feature, datasets.Image):
            return {"dtype": "image"}
        if isinstance(feature, datasets.Value):
            return {"dtype": feature.dtype}
        raise TypeError(f"no card form for feature {feature!r}")

    return [{"name": name, **inner(feature)} for name, feature in features.items()]


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
            "features": yaml_features(features),
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
                "features": yaml_features(features),
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
        tags=["dermatology", "medical", "skin-lesion", "synthetic", "image-text", *release.rows],
        annotations_creators=["machine-generated"],
        language_creators=["machine-generated"],
        multilinguality=["monolingual"],
        size_categories=[size_category(sum(rows_all.values()))],
        # the images come from collections that are not on the Hub (linked in the body); the
        # text is new: "original" is the Hub's term for that
        source_datasets=["original"],
        configs=configs,
        dataset_info=infos,
        **extra,
    )


PLACEHOLDER_REPO_ID = "<org>/dermasynth"
REPO_ID_MARK = re.compile(r"<!-- dermasynth:repo_id=(.*?) -->")
OFFLINE_MARK = "<!-- dermasynth:offline -->"
POPULATIONS = {
    "derm12345": "Türkiye",
    "bcn20000": "Spain",
    "pad_ufes_20": "Brazil",
    "scin": "the USA (internet users)",
    "hiba": "Argentina",
}
_STANDARD_PAIR_FIELDS = {
    "id", "question", "answer", "question_type", "task", "self_instruct", "bank", "model",
    "template_version", "label_consistent", "malignancy_consistent",
}  # fmt: skip
# The one call that turns rows (one per image) into one row per pair; shown in the card and README.
FLAT_CALL = (
    'flat = ds.map(lambda ids, pairs: {"image_id": [i for i, ps in zip(ids, pairs) for _ in ps], '
    "**{k: [p[k] for ps in pairs for p in ps] for k in pairs[0][0]}}, "
    'input_columns=["image_id", "pairs"], batched=True, remove_columns=ds.column_names)'
)


def format_cost(usd: float | None) -> str | None:
    """A cost exactly as `generate` printed it (dollars to four decimals); None for no cost."""
    if not usd:
        return None
    return f"${usd:,.4f}"


def fill_repo_id(card: str, repo_id: str) -> str:
    """The card with every use of its current repo id (the placeholder after `package`)
    replaced by ``repo_id``: what `push` uploads."""
    match = REPO_ID_MARK.search(card)
    current = match.group(1) if match else PLACEHOLDER_REPO_ID
    card = card.replace(f'"{current}"', f'"{repo_id}"')
    return REPO_ID_MARK.sub(f"<!-- dermasynth:repo_id={repo_id} -->", card, count=1)


def is_offline_card(card: str) -> bool:
    """Did the offline backend write this release's pairs (so it says at its top)?"""
    return OFFLINE_MARK in card


def _report_sections(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Report sections of any shape a curate/judge step writes: ``{"title", "text",
    "columns", "rows"}`` entries under ``report["sections"]``; anything else is skipped."""
    out = []
    for section in report.get("sections") or []:
        if not isinstance(section, dict) or not section.get("title"):
            continue
        rows = section.get("rows") or []
        columns = [str(c) for c in section.get("columns") or []]
        if rows and isinstance(rows[0], dict):
            columns = columns or [str(k) for k in rows[0]]
            rows = [[r.get(c) for c in columns] for r in rows]
        cells = [["-" if v is None else str(v) for v in row] for row in rows if columns]
        out.append(
            {"title": str(section["title"]), "text": section.get("text") or "",
             "columns": columns, "rows": cells}
        )  # fmt: skip
    return out


def _left_out(run: Path, plan: dict[str, Any]) -> int:
    """Official test images the plan left out: run.json's per-source counts, else heldout.jsonl."""
    counts = [s.get("official_test_left_out") for s in (plan.get("sources") or {}).values()]
    if any(isinstance(n, int) for n in counts):
        return sum(n for n in counts if isinstance(n, int))
    heldout = run / "heldout.jsonl"
    if not heldout.is_file():
        return 0
    with open(heldout, "rb") as fh:
        return sum(1 for line in fh if line.endswith(b"\n"))


def render_card(
    run: Path,
    info: dict[str, Any],
    release: Release,
) -> str:
    """The README.md of ``release``, made from RUN's run.json and report.json."""
    module = builder_module()
    data = card_data(release, module.features(release.diagnoses))
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
                "population": POPULATIONS.get(name, "unknown"),
                "license": ", ".join(lic.name for lic in licenses),
                "licenses": [{"name": x.name, "link": x.link} for x in licenses],
                "attribution": entry.attribution,
                "citation": entry.citation,
                "homepage": entry.homepage,
                "images": release.images[name],
                "pairs": release.pairs[name],
                "splits": splits,
                "modality": ", ".join(
                    f"{m} {n}" for m, n in release.modalities.get(name, Counter()).most_common()
                ),
            }
        )
    plan = info.get("plan", {})
    imported = info.get("import")
    if imported:  # never a local absolute path: the file's name only
        imported = {**imported, "file_name": Path(str(imported.get("file", ""))).name}
    generation = {"options": {}, **info.get("generation", {})}
    context = {
        "card_data": data.to_yaml(),
        "pretty_name": data.pretty_name,
        "repo_id": PLACEHOLDER_REPO_ID,
        "folder_name": release.out.name,
        "offline": release.offline,
        "offline_pairs": release.models.get("offline", 0),
        "flat_call": FLAT_CALL,
        "sources": sources,
        "populations": ", ".join(s["population"] for s in sources),
        "total_pairs": sum(s["pairs"] for s in sources),
        "total_images": sum(s["images"] for s in sources),
        "models": dict(release.models.most_common()),
        "generation": generation,
        "cost": format_cost(generation.get("estimated_cost_usd")),
        "plan": {
            "seed": plan.get("seed"),
            "recipe": plan.get("recipe"),
            "limit": plan.get("limit"),
        },
        "templates": {"version": "unknown", "digests": {}, **info.get("templates", {})},
        "imported": imported,
        "text_license": release.text_license,
        "curation": info.get("curation", {}),
        "report": {
            "rejected_by_filter": {},
            "label_agreement": [],
            "malignancy_agreement": [],
            **report,
        },
        "report_sections": _report_sections(report),
        "one_question_per_request": bool(generation["options"].get("one_question_per_request")),
        "upload_max_side": generation["options"].get("max_image_side")
        or (generation.get("model_settings") or {}).get("max_image_side"),
        "upload_original": bool((generation.get("model_settings") or {}).get("original_bytes")),
        "grounding_rejected": int((report.get("rejected_by_filter") or {}).get("grounding", 0)),
        "official_test_left_out": _left_out(run, plan),
        "include_official_test": bool(plan.get("include_official_test")),
        "source_names": [s["name"] for s in sources],
        "figures": release.figures,
        "has_test": any(s["splits"].get("test") for s in sources),
        "test_fraction": release.test_fraction,
        "max_image_side": release.max_image_side,
        "reencoded": release.reencoded,
        "extra_pair_fields": [f for f in module.pair_features() if f not in _STANDARD_PAIR_FIELDS],
    }
    template = make_env(data_path("dataset_card.md").parent).from_string(
        data_path("dataset_card.md").read_text(encoding="utf-8")
    )
    return template.render(context).strip() + "\n"
