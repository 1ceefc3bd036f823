"""SFP: channel attention from multi-level wavelet pooling (Wu et al. 2023, Sect. 3.3).

The channels are split with ``torch.chunk`` into ``groups`` groups. Group ``g`` is described by
the global average of the LL band of an ``levels[g]``-level 2-D DWT (by default level ``g + 1``),
giving one value per channel. One ``Linear(C, C)`` and a sigmoid turn that descriptor into
channel weights.

Implementation note: for a fixed input size, "DWT to level L, keep LL, average" is a fixed linear
functional of each H x W map. It is separable, ``mean(A_H X A_W^T)`` with ``A`` the 1-D multi-level
approximation operator, so it equals ``sum_ij a_H[i] a_W[j] X[i, j]`` with ``a = A.mean(0)``. We take
``A`` from PyWavelets itself (``pywt.wavedec`` of the identity), so every discrete wavelet and every
boundary mode has exactly PyWavelets' semantics. The per-group weight maps form a (groups, H*W)
basis, a non-persistent buffer, and the descriptor is one small GEMM: about as cheap as plain GAP.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pywt
import torch
from torch import Tensor, nn

__all__ = ["SFP", "wavelet_gap_weights"]


def _discrete_wavelet(name: str) -> pywt.Wavelet:
    try:
        return pywt.Wavelet(name)
    except ValueError as exc:
        raise ValueError(
            f"wavelet {name!r} is not a PyWavelets discrete wavelet (e.g. haar, db1..db38, sym2..sym20, "
            f"coif1..coif17; see pywt.wavelist(kind='discrete')): {exc}"
        ) from None


def _check_level(size: int, wavelet: pywt.Wavelet, level: int) -> None:
    max_level = pywt.dwt_max_level(size, wavelet.dec_len)
    if level > max_level:
        raise ValueError(
            f"input of size {size} is too small for a {level}-level DWT with {wavelet.name!r} "
            f"(filter length {wavelet.dec_len}): at most {max_level} levels fit"
        )


def wavelet_gap_weights(size: int, wavelet: str | pywt.Wavelet, level: int, mode: str) -> np.ndarray:
    """(size,) weights ``a`` with ``a @ x == mean(pywt.wavedec(x, wavelet, mode, level)[0])``."""
    wavelet = wavelet if isinstance(wavelet, pywt.Wavelet) else _discrete_wavelet(wavelet)
    _check_level(size, wavelet, level)
    approximation = pywt.wavedec(np.eye(size), wavelet, mode=mode, level=level, axis=0)[0]
    return approximation.mean(axis=0)


class SFP(nn.Module):
    """Channel attention from wavelet (LL band) pooling over channel groups.

    Args:
        channels: input channels C.
        groups: number of ``torch.chunk`` groups.
        wavelet: any PyWavelets discrete wavelet name (``haar``, ``db2``, ``sym3``, ...).
        levels: DWT level per group; default ``(1, 2, ..., groups)``. Level 0 is plain GAP.
        mode: PyWavelets signal-extension mode (``symmetric``, ``periodization``, ``zero``, ...).
    """

    gap_basis: Tensor
    own_group: Tensor

    def __init__(
        self,
        channels: int,
        *,
        groups: int = 3,
        wavelet: str = "db2",
        levels: Sequence[int] | None = None,
        mode: str = "symmetric",
    ) -> None:
        super().__init__()
        if channels <= 0:
            raise ValueError(f"expected a positive number of channels, got {channels}")
        if groups <= 0:
            raise ValueError(f"expected a positive number of groups, got {groups}")
        levels = tuple(range(1, groups + 1)) if levels is None else tuple(int(v) for v in levels)
        if len(levels) != groups:
            raise ValueError(f"expected one level per group: {groups} groups but levels={levels}")
        if any(v < 0 for v in levels):
            raise ValueError(f"levels must be >= 0, got {levels}")
        if mode not in pywt.Modes.modes:
            raise ValueError(f"unknown wavelet mode {mode!r}; expected one of {pywt.Modes.modes}")
        sizes = [len(c) for c in torch.arange(channels).chunk(groups)]
        if len(sizes) != groups:
            raise ValueError(f"torch.chunk splits {channels} channels into {len(sizes)} groups, not {groups}")
        self.channels = channels
        self.wavelet = _discrete_wavelet(wavelet)
        self.levels = levels
        self.mode = mode
        self.group_sizes = tuple(sizes)
        self.fc = nn.Linear(channels, channels)
        self.register_buffer("gap_basis", torch.empty(0), persistent=False)
        # The descriptor GEMM gives (groups, C); channel c keeps entry (group of c, c), at this flat index.
        group_of = torch.repeat_interleave(torch.arange(groups), torch.tensor(sizes))
        self.register_buffer("own_group", group_of * channels + torch.arange(channels), persistent=False)
        self._size: tuple[int, int] | None = None

    def extra_repr(self) -> str:
        return f"{self.channels}, wavelet={self.wavelet.name!r}, levels={self.levels}, mode={self.mode!r}"

    def _prepare(self, height: int, width: int) -> None:
        """Build the (groups, H*W) pooling basis for an input size (once; again only when it changes)."""
        if self._size == (height, width):
            return
        basis = []
        for level in self.levels:
            rows = wavelet_gap_weights(height, self.wavelet, level, self.mode)
            cols = wavelet_gap_weights(width, self.wavelet, level, self.mode)
            basis.append(torch.from_numpy(np.outer(rows, cols)).flatten())
        weight = self.fc.weight
        self.gap_basis = torch.stack(basis).to(device=weight.device, dtype=weight.dtype)
        self._size = (height, width)

    def descriptor(self, x: Tensor) -> Tensor:
        """The (N, C) wavelet-pooled descriptor: GAP of each channel's LL band at its group's level."""
        n, c, height, width = x.shape
        self._prepare(height, width)
        # Every group's map against every channel in one GEMM, then each channel keeps its own group.
        # (basis^T @ x^T is ~3x faster than x @ basis here: the GEMM's long side is then C, not groups.)
        basis = self.gap_basis.view(1, -1, height * width).expand(n, -1, -1)
        pooled = torch.bmm(basis, x.reshape(n, c, height * width).transpose(1, 2))  # (N, groups, C)
        return pooled.flatten(1).index_select(1, self.own_group)

    def forward(self, x: Tensor) -> Tensor:
        scale = torch.sigmoid(self.fc(self.descriptor(x)))
        return x * scale[:, :, None, None]
