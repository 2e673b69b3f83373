"""The `vitnas` command line (Typer + rich)."""
