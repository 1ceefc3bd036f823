"""ASP: attention by directional spatial pooling (Wu et al. 2023, Sect. 3.2).

Each channel of ``x`` (N, C, H, W) is average-pooled along four families of lines:

* ``h``  rows,               line ``i``                 -> (N, C, H)
* ``v``  columns,            line ``j``                 -> (N, C, W)
* ``fd`` forward diagonals,  line ``k = i + j``         -> (N, C, H + W - 1)   (eq. 7)
* ``bd`` backward diagonals, line ``k = i - j + W - 1`` -> (N, C, H + W - 1)   (eq. 9: ``z0`` is the
  top-right corner, the main diagonal is ``z_{W-1}``, the bottom-left corner is last)

The row and column poolings are concatenated and mapped by one 1x1 conv (C -> 1) and a sigmoid;
the two diagonal poolings likewise by a second conv. Every gate value is put back on the pixels of
its line, and the attention map is the product of the per-direction maps.

Implementation notes (the result is the same; the cost is ~1/70 of pooling every channel):

* A line mean and a 1x1 conv are both linear, so ``conv(pool(x)) == pool(conv(x))``. We reduce the
  channels first (one batched matmul, C -> number of convs) and pool the reduced maps.
* All line means of a map are one matmul with a fixed (H*W, lines) pooling matrix.
* Putting gate values back on their pixels is one gather; since the sigmoid is elementwise it is
  applied after the gather, so picking "conv p's value on line k" and "line k of pixel (i, j)"
  compose into a single fixed index.
* The pooling matrix and the index depend only on the input size. They are non-persistent buffers
  (moved by ``.to()``, left out of ``state_dict``), rebuilt only when the size changes. The few,
  large ops keep both eager PyTorch and ONNX Runtime fast at batch 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ASP", "DIRECTIONS", "line_index", "pooling_matrix"]

DIRECTIONS: tuple[str, ...] = ("h", "v", "fd", "bd")
# Directions that share one 1x1 conv, as in the paper: (rows, columns) and (the two diagonals).
_PAIRS: tuple[tuple[str, ...], ...] = (("h", "v"), ("fd", "bd"))


def line_index(direction: str, height: int, width: int) -> Tensor:
    """Index of the line each pixel lies on, as an (H*W,) long tensor in row-major pixel order."""
    i = torch.arange(height).unsqueeze(1).expand(height, width)
    j = torch.arange(width).unsqueeze(0).expand(height, width)
    lines = {"h": lambda: i, "v": lambda: j, "fd": lambda: i + j, "bd": lambda: i - j + (width - 1)}
    if direction not in lines:
        raise ValueError(f"unknown direction {direction!r}; expected one of {DIRECTIONS}")
    return lines[direction]().reshape(-1)


def pooling_matrix(direction: str, height: int, width: int) -> Tensor:
    """(H*W, L) float64 matrix whose column k averages the pixels on line k of ``direction``."""
    one_hot = F.one_hot(line_index(direction, height, width)).double()
    return one_hot / one_hot.sum(0, keepdim=True)


class ASP(nn.Module):
    """Spatial attention from directional average pooling.

    Args:
        channels: input channels C.
        directions: non-empty subset of ``("h", "v", "fd", "bd")`` (the ablation of Table 3).

    The 1x1 conv of the i-th direction pair (rows/columns, then diagonals) is output channel i of
    ``reduce``: one ``Conv2d(C, pairs, 1)`` holds exactly the parameters of ``pairs`` convs C -> 1.
    """

    pool_matrix: Tensor
    gather_index: Tensor

    def __init__(self, channels: int, *, directions: Sequence[str] = DIRECTIONS) -> None:
        super().__init__()
        if channels <= 0:
            raise ValueError(f"expected a positive number of channels, got {channels}")
        unknown = [d for d in directions if d not in DIRECTIONS]
        if unknown or not directions:
            raise ValueError(f"directions must be a non-empty subset of {DIRECTIONS}, got {tuple(directions)}")
        if len(set(directions)) != len(directions):
            raise ValueError(f"directions repeat: {tuple(directions)}")
        self.channels = channels
        self.directions = tuple(d for d in DIRECTIONS if d in directions)  # canonical order
        pairs = (tuple(d for d in pair if d in self.directions) for pair in _PAIRS)
        self.pairs = tuple(pair for pair in pairs if pair)
        self.reduce = nn.Conv2d(channels, len(self.pairs), kernel_size=1)
        self.register_buffer("pool_matrix", torch.empty(0), persistent=False)
        self.register_buffer("gather_index", torch.empty(0, dtype=torch.long), persistent=False)
        self._size: tuple[int, int] | None = None

    def extra_repr(self) -> str:
        return f"{self.channels}, directions={self.directions}"

    def _prepare(self, height: int, width: int) -> None:
        """Build the fixed maps for an input size (once; again only when the size changes)."""
        if self._size == (height, width):
            return
        matrices = [pooling_matrix(d, height, width) for d in self.directions]
        first_column = torch.tensor([0] + [m.shape[1] for m in matrices]).cumsum(0)
        total = int(first_column[-1])
        # `pooled` is (pairs, total lines) flattened: conv p's mean over column k sits at p * total + k.
        pair_of = {d: p for p, pair in enumerate(self.pairs) for d in pair}
        index = [
            pair_of[d] * total + int(first_column[k]) + line_index(d, height, width)
            for k, d in enumerate(self.directions)
        ]
        weight = self.reduce.weight
        self.pool_matrix = torch.cat(matrices, dim=1).to(device=weight.device, dtype=weight.dtype)
        self.gather_index = torch.cat(index).to(weight.device)
        self._size = (height, width)

    def pool(self, x: Tensor) -> dict[str, Tensor]:
        """The raw directional average poolings of ``x``: ``{direction: (N, C, L)}``."""
        _, _, height, width = x.shape
        flat = x.flatten(2)
        return {d: flat @ pooling_matrix(d, height, width).to(x) for d in self.directions}

    def attention(self, x: Tensor) -> Tensor:
        """The (N, 1, H, W) attention map: the product of the per-direction gate maps."""
        n, c, height, width = x.shape
        self._prepare(height, width)
        # The 1x1 convs as one batched matmul: oneDNN is slow for so few output channels, and plain
        # `weight @ x` does not fold the batch when the weight requires grad.
        weight = self.reduce.weight.view(1, len(self.pairs), c).expand(n, -1, -1)
        reduced = torch.bmm(weight, x.reshape(n, c, height * width)) + self.reduce.bias.view(1, -1, 1)
        pooled = reduced @ self.pool_matrix  # (N, pairs, lines): every conv's mean over every line
        gates = torch.sigmoid(pooled.flatten(1).index_select(1, self.gather_index))
        return gates.view(n, len(self.directions), height, width).prod(dim=1, keepdim=True)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.attention(x)
