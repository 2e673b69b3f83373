"""Start-up: each command imports only the heavy modules it needs (checked by module, not by timing)."""
import json
import subprocess
import sys

import pytest

from vitnas.cli.app import COMMANDS, load_command

HEAVY = ("torch", "ray", "optuna", "matplotlib", "scipy", "sklearn")


def heavy_imports(*commands: tuple[str, ...]) -> set[str]:
    """Run each `vitnas ARGS` in turn in one fresh interpreter; the heavy top-level modules they imported. (None of
    them imported a module when none is in the union.)"""
    code = ("import json, sys\nfrom vitnas.cli.app import app\n"
            f"for args in {[list(c) for c in commands]!r}:\n"
            "    try:\n        app(args, standalone_mode=False)\n    except SystemExit:\n        pass\n"
            f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_help_imports_no_heavy_module():
    assert heavy_imports(("--help",)) == set()


def test_a_usage_error_imports_only_its_command():
    assert heavy_imports(("report", "--no-such-option")) <= {"torch"}


@pytest.mark.slow  # a fresh interpreter that imports torch and counts every preset at 224x224: 15 s of CPU
def test_model_commands_need_torch_but_not_ray_optuna_matplotlib():
    commands = [("presets",), ("arch", "summary", "--preset", "deit_tiny"), ("space", "show", "metaformer")]
    assert heavy_imports(*commands) & {"ray", "optuna", "matplotlib"} == set()


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_listed_help_is_the_commands_own_first_sentence(name):
    """The root help shows COMMANDS' one-liners without importing modules; they must not drift from the commands."""
    own = " ".join((load_command(name).help or "").split())
    first_sentence = own.split(". ")[0].rstrip(".") + "."
    assert COMMANDS[name][1] == first_sentence
