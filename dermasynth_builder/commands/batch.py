"""``dermasynth status`` and ``dermasynth cancel``: a run's batch jobs."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from .common import UsageFailure, out


def _client():  # noqa: ANN202 - google.genai.Client, imported lazily
    import os

    if not (os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")):
        return None
    from google import genai

    return genai.Client()


@click.command()
@click.argument("run", type=click.Path(exists=True, path_type=Path))
def status(run: Path) -> None:
    """Show RUN's batch jobs (refreshed from the API when a key is set) and its counts."""
    from ..batch import TERMINAL, load_jobs, save_jobs
    from ..run import FAILURES, REQUESTS, RESPONSES, RunFolder, RunLockedError, iter_jsonl

    jobs = load_jobs(run)
    client = _client()
    if client is not None:
        for job in jobs:
            if job["name"] and not job["merged"] and job["state"] not in TERMINAL:
                remote = client.batches.get(name=job["name"])
                state = getattr(remote, "state", None)
                job["state"] = str(getattr(state, "value", state))
        try:  # a running `generate` owns the ledger: then only show, never overwrite it
            with RunFolder(run).lock("status"):
                save_jobs(run, jobs)
        except RunLockedError:
            pass
    table = Table(
        "job",
        "state",
        "calls",
        "requests",
        "input",
        "merged",
        title="batch jobs",
        title_justify="left",
    )
    for job in jobs:
        requests = sum(len(ids) for ids in job["calls"].values())
        table.add_row(
            job["name"] or f"({job['display_name']})",
            job["state"],
            f"{len(job['calls']):,}",
            f"{requests:,}",
            "inline" if job["inline"] else (job["input_file"] or "file"),
            "yes" if job["merged"] else "no",
        )
    out.print(table if jobs else "no batch jobs in this run")
    planned = sum(1 for _ in iter_jsonl(run / REQUESTS))
    responses = sum(1 for _ in iter_jsonl(run / RESPONSES))
    failures = sum(1 for _ in iter_jsonl(run / FAILURES))
    out.print(
        f"{planned:,} planned: {responses:,} responses, {failures:,} failures, "
        f"{planned - responses - failures:,} pending"
    )
    if client is None and any(not j["merged"] for j in jobs):
        out.print("(set GEMINI_API_KEY to refresh job states from the API)")


@click.command()
@click.argument("run", type=click.Path(exists=True, path_type=Path))
def cancel(run: Path) -> None:
    """Cancel RUN's unfinished batch jobs. Rerun `generate --mode batch` to record them as
    failures (then `--retry-failed` resubmits them)."""
    from ..batch import TERMINAL, load_jobs

    jobs = [j for j in load_jobs(run) if j["name"] and not j["merged"]]
    jobs = [j for j in jobs if j["state"] not in TERMINAL]
    if not jobs:
        out.print(f"{run} has no unfinished batch job: nothing to cancel")
        return
    client = _client()
    if client is None:
        raise UsageFailure("no Gemini API key: set GEMINI_API_KEY (or GOOGLE_API_KEY)")
    cancelled = []
    for job in jobs:
        client.batches.cancel(name=job["name"])
        cancelled.append(job["name"])
    out.print(f"cancelled {len(cancelled)} job(s): {', '.join(cancelled) or '-'}")
