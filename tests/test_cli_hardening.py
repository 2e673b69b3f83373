"""Bad option values end as one line and exit 2 before anything loads or trains (hardening issue)."""
import pytest
from typer.testing import CliRunner

from vitnas.cli.app import app
from vitnas.cli.options import parse_count
from vitnas.errors import UserError

runner = CliRunner()
DATA = "synthetic:n=64,size=8,chans=1,classes=2"


@pytest.mark.parametrize("args, fragment", [
    (["--seed", "-1"], "--seed"), (["--seed", str(10**23)], "--seed"),
    (["--time", "inf"], "--time"), (["--time", "nan"], "--time"), (["--time", "1e9"], "--time"),
])
def test_out_of_range_seed_and_budget_are_refused(args, fragment):
    result = runner.invoke(app, ["train", "--dataset", DATA, *args])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and fragment in lines[0]


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e400", "0", "-5M", "2e18"])
def test_counts_must_be_finite_positive_and_bounded(text):
    with pytest.raises(UserError, match="--max-macs"):
        parse_count(text, "--max-macs")


@pytest.mark.parametrize("text, value", [("500K", 500_000), ("1.2G", 1_200_000_000), ("42", 42)])
def test_counts_with_suffixes(text, value):
    assert parse_count(text, "--max-macs") == value
