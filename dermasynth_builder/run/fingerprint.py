"""The plan fingerprint: everything that decides what a plan asks, reduced to one digest.

Two plans with equal digests ask the same questions with the same prompts, so their results
are interchangeable; a different digest means results made under the old plan must not be
counted as done. Roots are resolved (symlinks followed) so the same folder reached two ways
is the same plan.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

METADATA_SUFFIXES = (".csv", ".tsv", ".json", ".parquet")
# Templates rendered at generate time, outside the request ids, still shape every prompt.
GENERATE_TEMPLATES = ("request.j2",)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def metadata_files(root: Path) -> dict[str, str]:
    """The metadata tables of a source root (two levels deep, where every reader looks), with
    their digests; images are not hashed (a changed image is caught when it is read)."""
    found: dict[str, str] = {}
    for pattern in ("*", "*/*"):
        for path in sorted(root.glob(pattern)):
            if path.suffix.lower() in METADATA_SUFFIXES and path.is_file():
                found[path.relative_to(root).as_posix()] = file_digest(path)
    return found


def template_digests(templates: Path, used: dict[str, str]) -> dict[str, str]:
    """The digests of the templates a plan rendered plus those rendered at generate time."""
    digests = dict(used)
    for name in GENERATE_TEMPLATES:
        path = templates / name
        if path.is_file():
            digests[name] = file_digest(path)
    return dict(sorted(digests.items()))


def plan_fingerprint(
    sources: list[tuple[str, Path]],
    *,
    seed: int | None,
    limit: int | None,
    recipe: str,
    templates: dict[str, str],
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The fingerprint stored in ``run.json``: its parts (to say what changed) and a digest.
    ``options`` holds further plan choices (e.g. including official test images), when set."""
    parts = {
        "sources": {
            name: {"root": str(Path(root).expanduser().resolve()), "metadata": metadata_files(root)}
            for name, root in sources
        },
        "seed": seed,
        "limit": limit,
        "recipe": recipe,
        "templates": templates,
    }
    if options:
        parts["options"] = options
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()
    return {**parts, "digest": hashlib.sha256(blob).hexdigest()[:24]}


def what_changed(old: dict[str, Any], new: dict[str, Any]) -> str:
    """A short phrase naming the first part of a fingerprint that differs."""
    for key in ("recipe", "seed", "limit"):
        if old.get(key) != new.get(key):
            return f"{key} {old.get(key)!r} -> {new.get(key)!r}"
    old_sources, new_sources = old.get("sources", {}), new.get("sources", {})
    if set(old_sources) != set(new_sources):
        return f"sources {sorted(old_sources)} -> {sorted(new_sources)}"
    for name, spec in new_sources.items():
        before = old_sources[name]
        if before.get("root") != spec.get("root"):
            return f"{name} root {before.get('root')} -> {spec.get('root')}"
        if before.get("metadata") != spec.get("metadata"):
            return f"{name} metadata files changed"
    old_t, new_t = old.get("templates", {}), new.get("templates", {})
    changed = sorted(k for k in set(old_t) | set(new_t) if old_t.get(k) != new_t.get(k))
    if changed:
        return f"templates changed: {', '.join(changed[:3])}"
    return "nothing"
