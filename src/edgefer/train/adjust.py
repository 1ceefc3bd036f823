"""Post-hoc logit adjustment (Menon et al. 2021), baked into a trained model's last layer.

A model trained on FER2013 has learnt its class prior (disgust is 1.5% of Training, happy 25%).
Subtracting ``tau * log prior`` from its logits trades some recall of the frequent classes for the
rare ones'; ``tau = 1`` is the balanced-error optimum in theory, smaller values a milder dial. The
same shift subtracted from the final ``Linear`` layer's bias gives the adjusted model as an ordinary
checkpoint, so every runtime, precision, split and server runs it unchanged. An ensemble is shifted
after its members' probabilities are averaged (its ``shift``), which is what adjusting its
probabilities means; shifting each member's bias would not be.
(:func:`edgefer.train.targets.log_prior` gives the prior; the training-time variant is the recipes'
``logit_adjust``.)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..models.ensemble import Ensemble

__all__ = ["adjust_logits", "final_linear"]


def final_linear(net: nn.Module, num_classes: int) -> nn.Linear:
    """The layer that produces the logits: ``net.fc``, else the only ``Linear`` with ``num_classes`` outputs."""
    fc = getattr(net, "fc", None)
    if isinstance(fc, nn.Linear) and fc.out_features == num_classes:
        return fc
    found = [m for m in net.modules() if isinstance(m, nn.Linear) and m.out_features == num_classes]
    if len(found) != 1:
        raise ValueError(
            f"{type(net).__name__} has {len(found)} Linear layers with {num_classes} outputs, not one: "
            "logit adjustment needs a single final Linear layer (an ensemble: adjust its members)"
        )
    return found[0]


def adjust_logits(net: nn.Module, log_prior: Tensor, tau: float) -> nn.Module:
    """Subtract ``tau * log_prior`` from ``net``'s logits, in place, through its final layer's bias
    (an :class:`Ensemble`: through its ``shift``, kept in its build arguments so that it saves)."""
    if isinstance(net, Ensemble):
        shift = -tau * log_prior.float()
        net.shift = shift if net.shift is None else net.shift + shift
        if hasattr(net, "build_args"):  # made by edgefer.loading.make_ensemble
            net.build_args["shift"] = net.shift.tolist()
        return net
    layer = final_linear(net, len(log_prior))
    if layer.bias is None:
        raise ValueError(f"{type(net).__name__}'s final Linear layer has no bias to adjust")
    with torch.no_grad():
        layer.bias -= tau * log_prior.to(layer.bias)
    return net
