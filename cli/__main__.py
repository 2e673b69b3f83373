"""`python -m vitnas.cli` runs the `vitnas` command."""
from vitnas.cli.app import main

main()
