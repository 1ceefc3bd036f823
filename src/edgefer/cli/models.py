"""``edgefer models``: list the registered model configurations.

Usage:
    edgefer models
    edgefer models 'shufflenet*' --stages
"""

from __future__ import annotations

from typing import Annotated

import typer

from ..models import available, build


def models(
    pattern: Annotated[str, typer.Argument(help="Shell-style name pattern.")] = "*",
    stages: Annotated[bool, typer.Option(help="Also list each model's stages (the split points).")] = False,
) -> None:
    """List the registered model configurations."""
    names = available(pattern)
    if not names:
        raise typer.BadParameter(f"no model matches {pattern!r}")
    for name in names:
        typer.echo(f"{name}  {' '.join(build(name).stage_names)}" if stages else name)
