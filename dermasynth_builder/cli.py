"""The ``dermasynth`` command line: one verb per step of the data flow.

Exit codes: 0 done; 1 finished but some items failed or were skipped; 2 bad usage or input.
"""

from __future__ import annotations

import click

from . import __version__
from .commands.batch import cancel, status
from .commands.curate import curate
from .commands.eval import eval_command
from .commands.export import export
from .commands.finetune import finetune
from .commands.generate import generate
from .commands.import_original import import_original
from .commands.judge import judge
from .commands.package import package
from .commands.plan import plan
from .commands.push import push
from .commands.run import demo, run_command
from .commands.sources import sources


class InOrder(click.Group):
    """Lists the verbs in data-flow order, not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each verb's whole first sentence, wrapped, never cut mid-sentence."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> object:
        """Ctrl-C: every writer is append-only or atomic, so what is done is saved; exit 130."""
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            from .commands.common import err

            err.print("interrupted: what was done is saved; rerun the same command to resume")
            ctx.exit(130)
        except OSError as exc:  # disk full, permission denied, a path that vanished: one line
            from rich.text import Text

            from .commands.common import err

            err.print(Text.assemble(("error: ", "bold red"), str(exc)))
            ctx.exit(2)


@click.group(
    cls=InOrder,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="dermasynth")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Build synthetic dermatology image-text pairs from open image collections.

    Steps: read sources, plan prompts, generate answers with a vision-language model,
    curate, and package a Hugging Face dataset with one config per source.
    Sources: derm12345, bcn20000, pad_ufes_20, scin, hiba.
    """
    if ctx.invoked_subcommand is None:  # bare `dermasynth`: the help, and that is not an error
        click.echo(ctx.get_help())


for command in (sources, plan, generate, status, cancel, curate, package, push, run_command, demo):
    cli.add_command(command)
cli.add_command(import_original, name="import-original")
cli.add_command(export)
cli.add_command(eval_command, name="eval")
cli.add_command(finetune)
cli.add_command(judge)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="dermasynth")
