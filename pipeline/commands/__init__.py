"""CLI command groups. Each module exposes `cli`, a typer.Typer that pipeline/cli.py merges."""
