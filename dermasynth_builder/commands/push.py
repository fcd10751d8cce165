"""``dermasynth push``: upload a release folder to the Hugging Face Hub."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from .common import UsageFailure, err, out


def release_files(folder: Path) -> list[tuple[str, int]]:
    """What an upload sends: every file but hidden ones (caches, temp folders)."""
    files = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            files.append((rel.as_posix(), path.stat().st_size))
    return files


@click.command()
@click.argument("folder", metavar="DIR", type=click.Path(path_type=Path))
@click.option("--repo-id", required=True, metavar="ORG/NAME", help="The dataset repo on the Hub.")
@click.option("--private", is_flag=True, help="Create the repo as private.")
@click.option("--dry-run", is_flag=True, help="List what would be uploaded; upload nothing.")
@click.option("--message", default="DermaSynth release", show_default=True, help="Commit message.")
@click.option(
    "--allow-offline",
    is_flag=True,
    help="Push a release whose pairs the offline backend wrote (template text; refused otherwise).",
)
def push(
    folder: Path, repo_id: str, private: bool, dry_run: bool, message: str, allow_offline: bool
) -> None:
    """Upload the release folder DIR (from `dermasynth package`) to a Hub dataset repo.

    Creates the repo if needed, then uploads with huggingface_hub (large uploads resume). The
    token comes from HF_TOKEN or the login cache (`hf auth login`) and is never printed.
    HF_ENDPOINT selects another Hub. The uploaded card names ORG/NAME in its load calls (the
    local README is left as it is). A release made with the offline backend is refused unless
    --allow-offline is given: its answers are templates, not model output.
    """
    if not (folder / "README.md").is_file() or not (folder / "data").is_dir():
        raise UsageFailure(
            f"{folder} is not a release folder (no README.md and data/): "
            "run `dermasynth package RUN --out DIR` first"
        )
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise UsageFailure(f"--repo-id {repo_id!r}: expected ORG/NAME")
    from huggingface_hub import CommitOperationAdd, HfApi, constants, get_token
    from huggingface_hub.errors import HfHubHTTPError

    from ..card import fill_repo_id, is_offline_card

    card = (folder / "README.md").read_text(encoding="utf-8")
    refusal = None
    if is_offline_card(card) and not allow_offline:
        refusal = (
            f"{folder} was made with the offline backend (template answers, no model saw the "
            "images): not pushed; pass --allow-offline to publish it anyway"
        )
        if not dry_run:
            raise UsageFailure(refusal)
    card = fill_repo_id(card, repo_id)
    files = release_files(folder)
    total = sum(size for _, size in files)
    if dry_run:
        table = Table(
            "file",
            "bytes",
            title=f"would upload to {constants.ENDPOINT}/datasets/{repo_id}"
            + (" (private)" if private else ""),
            title_justify="left",
        )
        for name, size in files:
            table.add_row(name, f"{size:,}")
        out.print(table)
        out.print(f"{len(files)} files, {total / 2**20:,.1f} MiB; dry run: nothing uploaded")
        if refusal:
            err.print(f"warning: {refusal}")
        return
    token = get_token()
    if not token:
        raise UsageFailure("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        operations = [
            CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(folder / name))
            for name, _ in files
            if name != "README.md"
        ]
        operations.append(CommitOperationAdd("README.md", card.encode("utf-8")))
        commit = api.create_commit(
            repo_id=repo_id,
            repo_type="dataset",
            operations=operations,
            commit_message=message,
        )
    except HfHubHTTPError as exc:
        from ..engine import redact  # the engine is heavy: only on this error path

        status = getattr(exc.response, "status_code", None)
        text = redact(str(exc).splitlines()[0])
        if status in (401, 403):
            raise UsageFailure(f"the Hub refused the token ({status}): {text}") from None
        err.print(f"error: upload failed: {text}")
        sys.exit(1)
    out.print(f"pushed {len(files)} files ({total / 2**20:,.1f} MiB) to {url}")
    out.print(f"commit: {getattr(commit, 'oid', commit)}")
    out.print(f'load it: load_dataset("{repo_id}", "scin")')
