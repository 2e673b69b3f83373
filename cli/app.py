"""The `vitnas` Typer app: registers each command module; a UserError anywhere becomes one line on stderr, exit 2."""
import sys

import typer
from typer.core import TyperGroup

from vitnas.cli import arch, evaluate, report, search, space, train
from vitnas.errors import UserError


class _UserErrorGroup(TyperGroup):
    """Answers all bad input the same way, nested commands included: `error: ...` on one line, exit status 2.

    UserError comes from our own validation; usage errors (an unknown flag, a value of the wrong type) come from
    Typer's click, which would otherwise print a usage banner and a framed box.
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except Exception as err:
            # click's UsageError/BadParameter (Typer vendors click, so match its shape rather than its class)
            if not (hasattr(err, "format_message") and getattr(err, "exit_code", None) == 2):
                raise
            message = " ".join(err.format_message().split())
            if message:  # empty when a bare `vitnas` has just printed its help
                where = f"`{err.ctx.command_path} --help`" if getattr(err, "ctx", None) else "`vitnas --help`"
                typer.echo(f"error: {message} (see {where})", err=True)
            code = 2
        if standalone_mode:
            sys.exit(code or 0)
        return code


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
    app()
