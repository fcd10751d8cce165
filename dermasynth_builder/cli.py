"""The ``dermasynth`` command line: one verb per step of the data flow.

Exit codes: 0 done; 1 finished but some items failed or were skipped; 2 bad usage or input.
"""

from __future__ import annotations

import click

from . import __version__
from .commands.batch import cancel, status
from .commands.curate import curate
from .commands.generate import generate
from .commands.import_original import import_original
from .commands.package import package
from .commands.plan import plan
from .commands.push import push
from .commands.run import demo, run_command
from .commands.sources import sources


class InOrder(click.Group):
    """Lists the verbs in data-flow order, not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(
    cls=InOrder,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="dermasynth")
def cli() -> None:
    """Build synthetic dermatology image-text pairs from open image collections.

    Steps: read sources, plan prompts, generate answers with a vision-language model,
    curate, and package a Hugging Face dataset with one config per source.
    Sources: derm12345, bcn20000, pad_ufes_20, scin, hiba.
    """


for command in (sources, plan, generate, status, cancel, curate, package, push, run_command, demo):
    cli.add_command(command)
cli.add_command(import_original, name="import-original")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="dermasynth")
