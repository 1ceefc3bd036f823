"""The layers and what each may import (docs/ARCHITECTURE.md), checked on every module's import statements.

Data flows one way: photo -> faces -> tensor -> edge part -> wire -> cloud part -> wire -> edge tail
-> expressions. A lower layer never imports a higher one; the device never imports the server or
training, and inference never imports training.
"""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "edgefer"

# layer -> the edgefer layers it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "models": set(),
    "onnxrt": set(),
    "photos": set(),
    "data": {"photos"},
    "escalation": set(),
    "faces": {"photos", "onnxrt"},
    "wire": {"photos"},
    "loading": {"models", "data", "onnxrt", "export"},  # export: a checkpoint asked for ONNX Runtime
    "export": {"loading", "models", "data", "onnxrt"},
    "edge": {"loading", "wire", "data", "escalation"},
    "serving": {"loading", "wire", "data", "__init__"},  # __init__: the version
    "pipeline": {"edge", "faces", "photos", "loading"},
    "annotate": {"pipeline"},
    "video": {"pipeline", "faces", "photos", "edge", "loading", "tracking"},
    "tracking": {"faces"},
    "timeline": set(),
    "analysis": {"pipeline", "video", "tracking", "faces", "photos", "edge", "loading", "data"},
    "demo": {"pipeline", "edge", "faces", "photos", "loading", "serving", "annotate"},
    "train": {"data", "models", "loading"},
    "prune": {"models", "data", "loading", "train", "bench"},
    "bench": {"edge", "loading", "serving", "models", "onnxrt", "data", "faces", "photos", "wire", "video", "tracking"},
    "pretrained": {"loading"},
    "__init__": {"pretrained", "loading", "analysis"},
    "cli": {"*"},
}


def _layer(module: Path) -> str:
    parts = module.relative_to(SRC).with_suffix("").parts
    return parts[0]


def _imports(module: Path) -> set[str]:
    """The edgefer layers a module imports (relative imports resolved against its package)."""
    package = module.relative_to(SRC).with_suffix("").parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = (*base, *(node.module.split(".") if node.module else ()))
                if not target:  # "from .. import __version__"
                    found.add("__init__")
                    continue
                names = [target[0]] if node.module else [target[0], *(alias.name for alias in node.names)][:1]
                found.update(names)
            elif node.module and node.module.startswith("edgefer."):
                found.add(node.module.split(".")[1])
    return found


MODULES = sorted(p for p in SRC.rglob("*.py") if "weights" not in p.parts)


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_each_module_imports_only_the_layers_below_it(module):
    layer = _layer(module)
    assert layer in ALLOWED, f"{layer} is not in the layer table (tests/test_layers.py, docs/ARCHITECTURE.md)"
    allowed = ALLOWED[layer]
    if "*" in allowed:
        return
    wrong = {name for name in _imports(module) if name not in allowed and name != layer}
    assert not wrong, f"{module.relative_to(SRC)} ({layer}) imports {sorted(wrong)}; allowed: {sorted(allowed)}"
