"""FERNet: a backbone as named stages, with an attention chain after one of them, splittable in three.

For the paper's model the stages are ``conv1, maxpool, stage2, attention, stage3, stage4, conv5,
pool, fc`` and ``attention`` is ``Sequential(asp=ASP, sfp=SFP)``. ``split(after="stage2")`` gives
the edge head (conv1..stage2), the cloud part (the attention chain) and the edge tail (stage3..fc).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import nn

from .asp import ASP
from .sfp import SFP

__all__ = ["FERNet", "attention_chain"]

ATTENTION = "attention"


def attention_chain(
    channels: int,
    order: Sequence[str],
    *,
    directions: Sequence[str],
    groups: int,
    levels: Sequence[int] | None,
    wavelet: str,
    mode: str,
) -> nn.Sequential:
    """The attention modules in ``order`` (e.g. ``("asp", "sfp")``), as one named Sequential."""
    makers = {
        "asp": lambda: ASP(channels, directions=directions),
        "sfp": lambda: SFP(channels, groups=groups, wavelet=wavelet, levels=levels, mode=mode),
    }
    return nn.Sequential(OrderedDict((name, makers[name]()) for name in order))


class FERNet(nn.Sequential):
    """A classifier made of named stages, run in order.

    Stages are addressable as attributes (``net.stage2``) and ``state_dict`` keys carry their names.
    """

    def __init__(self, stages: OrderedDict[str, nn.Module]) -> None:
        super().__init__(stages)

    @property
    def stage_names(self) -> list[str]:
        return list(self._modules)

    def stage(self, name: str) -> nn.Module:
        """One stage by name (``net.stage("stage2")``)."""
        self._index(name)
        return getattr(self, name)

    def _part(self, names: Sequence[str]) -> nn.Module:
        if not names:
            return nn.Identity()
        return nn.Sequential(OrderedDict((name, getattr(self, name)) for name in names))

    def _index(self, name: str) -> int:
        names = self.stage_names
        if name not in names:
            raise ValueError(f"unknown stage {name!r}; the stages are {names}")
        return names.index(name)

    def split(self, after: str = "stage2", until: str | None = None) -> tuple[nn.Module, nn.Module, nn.Module]:
        """Cut the network into ``(edge_head, cloud_part, edge_tail)``.

        ``edge_head`` runs the stages up to and including ``after``; ``cloud_part`` runs the stages
        after it up to and including ``until``; ``edge_tail`` runs the rest. By default ``until`` is
        the attention chain when it directly follows ``after`` (the paper's split), otherwise the
        cloud part is the identity. ``until="fc"`` gives a Neurosurgeon-style split where the cloud
        returns logits and the tail is the identity. The parts share the network's modules, so
        ``edge_tail(cloud_part(edge_head(x)))`` computes exactly ``net(x)``.
        """
        names = self.stage_names
        start = self._index(after) + 1
        if until is None:
            stop = start + 1 if start < len(names) and names[start] == ATTENTION else start
        else:
            stop = self._index(until) + 1
            if stop < start:
                raise ValueError(f"until={until!r} comes before after={after!r}; the stages are {names}")
        return self._part(names[:start]), self._part(names[start:stop]), self._part(names[stop:])
