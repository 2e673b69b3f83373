"""The `vitnas` Typer app: a table of commands loaded on first use; a UserError anywhere becomes one line, exit 2.

Why lazy: each command module imports what its command needs (torch, Ray, Optuna, matplotlib), which takes seconds.
`vitnas --help` and a mistyped option should answer at once, and `vitnas report` should not pay for Ray. So the
root group lists commands from COMMANDS (name, where the command lives, its one-line help) and imports a command's
module only when that command runs or its own help is asked for.
"""
import importlib
import sys

import typer
import typer.main
from typer.core import TyperGroup

from vitnas.errors import UserError

# name -> ("module:attribute", one-line help). The attribute is a command function or a Typer sub-app. A new
# command is a module in cli/ plus a row here (tests/test_cli_startup.py checks each row's help against the command).
COMMANDS: dict[str, tuple[str, str]] = {
    "presets": ("vitnas.cli.arch:presets", "List the published architectures shipped as presets, with params and "
                                           "MACs at 224x224x3, 1000 classes."),
    "arch": ("vitnas.cli.arch:app", "Inspect architectures: params, MACs, FLOPs, activation memory."),
    "space": ("vitnas.cli.space:app", "Show a search space or sample configs from it."),
    "train": ("vitnas.cli.train:train", "Train one architecture and measure accuracy, cost, latency and robustness; "
                                        "save a checkpoint."),
    "evaluate": ("vitnas.cli.evaluate:evaluate", "Re-measure a trained model on a data set's test split."),
    "search": ("vitnas.cli.search:search", "Search the MetaFormer space for architectures on the Pareto front of "
                                           "accuracy, MACs and robustness."),
    "ablate": ("vitnas.cli.ablate:app", "Run ablation studies that test published claims with paired seeds, "
                                        "confidence intervals and verdicts."),
    "report": ("vitnas.cli.report:report", "Report a study: Pareto front (non-dominated completed trials), "
                                           "hypervolume, knee point, trial counts."),
    "export": ("vitnas.cli.export:export", "Export an architecture as pure PyTorch: model.py, weights.pt, train.py, "
                                           "config.yaml, metrics.json, README.md."),
}


def load_command(name: str):
    """The Click command for `name`, importing its module now."""
    module_name, attribute = COMMANDS[name][0].split(":")
    target = getattr(importlib.import_module(module_name), attribute)
    if isinstance(target, typer.Typer):
        command = typer.main.get_group(target)  # a group even when it holds one command (`arch summary`)
    else:
        single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


class _VitnasGroup(TyperGroup):
    """Loads commands lazily and answers all bad input the same way, nested commands included: `error: ...` on one
    line, exit status 2.

    UserError comes from our own validation; usage errors (an unknown flag, a value of the wrong type) come from
    Typer's click, which would otherwise print a usage banner and a framed box.
    """

    def list_commands(self, ctx) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx, cmd_name: str):
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.commands[cmd_name] = load_command(cmd_name)
        return self.commands.get(cmd_name)

    def format_help(self, ctx, formatter) -> None:
        # The command list needs only names and one-line helps: show them without importing any command module.
        import click

        loaded = dict(self.commands)
        self.commands.update({name: click.Command(name, help=help_text) for name, (_, help_text) in COMMANDS.items()
                              if name not in loaded})
        try:
            super().format_help(ctx, formatter)
        finally:
            self.commands.clear()
            self.commands.update(loaded)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as err:
            # one line whatever the message quotes (a key or a file name may hold a line break)
            typer.echo(f"error: {' '.join(str(err).splitlines())}", err=True)
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


app = typer.Typer(cls=_VitnasGroup, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Neural architecture search and ablation studies over MetaFormer vision backbones.")


@app.callback()
def _root() -> None:
    """Neural architecture search and ablation studies over MetaFormer vision backbones."""


def main() -> None:
    app()
