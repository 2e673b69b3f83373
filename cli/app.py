"""The `vitnas` Typer app: registers each command module; a UserError anywhere becomes one line on stderr, exit 2."""
import sys

import typer
from typer.core import TyperGroup

from vitnas.cli import arch, evaluate, report, search, space, train
from vitnas.search_spaces.errors import UserError


class _UserErrorGroup(TyperGroup):
    """Catches UserError at the root so every command, nested or not, answers bad input the same way."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None


app = typer.Typer(cls=_UserErrorGroup, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Neural architecture search and ablation studies over MetaFormer vision backbones.")
app.command("presets")(arch.presets)
app.add_typer(arch.app, name="arch")
app.add_typer(space.app, name="space")
app.command("train")(train.train)
app.command("evaluate")(evaluate.evaluate)
app.command("search")(search.search)
app.command("report")(report.report)


def main() -> None:
    sys.exit(app(standalone_mode=True))
