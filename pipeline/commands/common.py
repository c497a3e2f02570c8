"""Helpers shared by the command modules."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from pipeline.errors import UserError


@contextmanager
def user_errors() -> Iterator[None]:
    """Print a UserError as one red line and exit with status 2; nothing was written."""
    try:
        yield
    except UserError as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        sys.exit(2)
