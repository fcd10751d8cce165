"""``dermasynth sources``: list the supported sources and check a source folder."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

import click
from rich.table import Table

from ..paths import sample_root
from ..records import POLICY_SKIPS, Skip
from ..sources import ReadResult
from ..sources.registry import REGISTRY, SOURCE_NAMES, unknown_source
from .common import out, read_source, warn


class SourceName(click.ParamType):
    """A source name; a typo gets "did you mean ...?"."""

    name = "SOURCE"

    def convert(self, value, param, ctx):  # noqa: ANN001, ANN201 - click's signature
        if value in SOURCE_NAMES:
            return value
        self.fail(unknown_source(value), param, ctx)


@click.group()
def sources() -> None:
    """Inspect and validate source folders (the official downloads, unpacked)."""


@sources.command("list", short_help="The sources, their licences and ROOT layouts.")
def sources_list() -> None:
    """List the supported sources: licence and the ROOT layout each reader expects."""
    table = Table("source", "licence", "expected ROOT layout", show_lines=True)
    for name, info in REGISTRY.items():
        table.add_row(name, info.license, info.layout)
    out.print(table)


@sources.command("check", short_help="Check a source folder: what is used, what is skipped.")
@click.argument("source", type=SourceName(), required=False)
@click.argument("root", type=click.Path(path_type=Path), required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@click.option(
    "--sample",
    is_flag=True,
    help="Check the bundled sample copy of SOURCE (of all five sources when SOURCE is omitted).",
)
def sources_check(source: str | None, root: Path | None, as_json: bool, sample: bool) -> None:
    """Read SOURCE from ROOT: what would be used, what is skipped and why.

    Every metadata row becomes either a record or a skip with a reason (image missing,
    image unreadable, image path escapes ROOT, image already read, bad row). Odd values are
    reported as warnings and read as missing. Exit code 1 when anything was skipped for a problem
    (skips by policy, such as SCIN cases graded insufficient quality, are listed but do not count).
    `dermasynth sources list` shows the folder layout each source expects.

    \b
    Examples:
      dermasynth sources check pad_ufes_20 ~/data/PAD-UFES-20
      dermasynth sources check scin ~/data/scin --json
      dermasynth sources check --sample
    """
    if sample:
        if root is not None:
            raise click.UsageError("--sample reads the bundled copy: give no ROOT")
        jobs = [(name, sample_root(name)) for name in ([source] if source else SOURCE_NAMES)]
    elif source is None or root is None:
        raise click.UsageError("give SOURCE and ROOT, or --sample")
    else:
        jobs = [(source, root)]
    results = []
    for name, folder in jobs:
        started = time.perf_counter()
        result = read_source(name, folder, show=not as_json)
        results.append((result, time.perf_counter() - started))
    if as_json:
        payloads = [summary(r, seconds) for r, seconds in results]
        click.echo(json.dumps(payloads[0] if len(payloads) == 1 else payloads, ensure_ascii=False))
    else:
        for result, seconds in results:
            print_result(result, seconds)
    empty = [
        (r, folder) for (r, _), (_, folder) in zip(results, jobs, strict=True) if not r.records
    ]
    for result, folder in empty:
        reasons = Counter(s.reason for s in result.skipped).most_common(3)
        top = ", ".join(f"{n} {reason}" for reason, n in reasons) or "no metadata rows"
        warn(
            f"{result.source}: no usable image ({top}); are the images unpacked under {folder}? "
            f"`dermasynth sources list` shows the layout {result.source} expects"
        )
    if empty or any(s.reason not in POLICY_SKIPS for r, _ in results for s in r.skipped):
        sys.exit(1)


def summary(result: ReadResult, seconds: float) -> dict:
    """The ``--json`` payload: counts, and every skip and warning with file, line and reason."""
    return {
        "source": result.source,
        "root": result.root,
        "records": len(result.records),
        "skipped": [s.to_dict() for s in result.skipped],
        "warnings": [w.to_dict() for w in result.warnings],
        "by_modality": dict(Counter(r.modality for r in result.records).most_common()),
        "by_diagnosis": dict(
            Counter(r.diagnosis or "(none)" for r in result.records).most_common()
        ),
        "skipped_by_reason": dict(Counter(s.reason for s in result.skipped).most_common()),
        "seconds": round(seconds, 3),
    }


def print_result(result: ReadResult, seconds: float, top: int = 15) -> None:
    out.rule(f"[bold]{result.source}[/] {result.root}")
    out.print(
        f"{len(result.records)} records, {len(result.skipped)} skipped, "
        f"{len(result.warnings)} warnings ({seconds:.2f} s)"
    )
    if result.records:
        preview = Table(
            "image_id",
            "modality",
            "diagnosis",
            "malignancy",
            "age",
            "sex",
            "site",
            title="first records",
            title_justify="left",
        )
        for r in result.records[:5]:
            preview.add_row(
                r.image_id,
                r.modality,
                r.diagnosis or "-",
                r.malignancy or "-",
                "-" if r.age is None else str(r.age),
                r.sex or "-",
                r.anatomic_site or "-",
            )
        out.print(preview)
        _counts("modality", Counter(r.modality for r in result.records).most_common(), top)
        diagnoses = Counter(r.diagnosis or "(none)" for r in result.records).most_common()
        _counts("diagnosis", diagnoses, top)
    _grouped("skipped", result.skipped)
    _grouped("warnings", result.warnings)


def _counts(title: str, rows: list[tuple[str, int]], top: int) -> None:
    table = Table(title, "records", title=f"by {title}", title_justify="left")
    for key, count in rows[:top]:
        table.add_row(key, str(count))
    if len(rows) > top:
        table.add_row(f"... {len(rows) - top} more", str(sum(c for _, c in rows[top:])))
    out.print(table)


def _grouped(title: str, items: list[Skip], examples: int = 5) -> None:
    if not items:
        return
    groups: dict[str, list[Skip]] = {}
    for item in items:
        groups.setdefault(item.reason, []).append(item)
    out.print(f"[bold]{title}[/] ({len(items)})")
    for reason, group in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        out.print(f"  {reason}: {len(group)}")
        for item in group[:examples]:
            where = f"{item.file}:{item.line}" if item.line else item.file
            out.print(f"    {item.image_id or '-'}  ({where})  {item.detail}")
        if len(group) > examples:
            out.print(f"    ... and {len(group) - examples} more")
