"""``edgefer train`` on the GPU machine: the same command, without the rest of the CLI.

That machine's Python image has PyTorch but not the serving stack (starlette, uvicorn) that
``edgefer.cli.main`` imports for ``serve``, nor zstandard, which only the wire codec calls when it
compresses a tensor; an empty module stands in for it, since training never compresses.

    python3 scripts/gpu/train.py shufflenet --data ... --recipe strong --out ... --workers 4
"""

import logging
import sys
import types

sys.modules.setdefault("zstandard", types.ModuleType("zstandard"))

import typer  # noqa: E402

from edgefer.cli.train import train  # noqa: E402

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("edgefer").setLevel(logging.INFO)
    typer.run(train)
