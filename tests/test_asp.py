"""ASP (Sect. 3.2): directional poolings, the attention map, and the direction ablation."""

import itertools

import pytest
import torch

from edgefer.models import ASP

# The paper's 3x3 toy map, x[i, j] = "x_ij".
TOY = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]).view(1, 1, 3, 3)
x = TOY[0, 0]


def test_toy_map_matches_equations_3_5_7_9():
    pooled = ASP(1).pool(TOY)
    # (3) rows and (5) columns
    assert pooled["h"].flatten().tolist() == [x[0].mean(), x[1].mean(), x[2].mean()]
    assert pooled["v"].flatten().tolist() == [x[:, 0].mean(), x[:, 1].mean(), x[:, 2].mean()]
    # (7) forward diagonals: z0 = x00, z1 = (x10 + x01) / 2, ...
    fd = [x[0, 0], (x[1, 0] + x[0, 1]) / 2, (x[2, 0] + x[1, 1] + x[0, 2]) / 3, (x[2, 1] + x[1, 2]) / 2, x[2, 2]]
    assert torch.allclose(pooled["fd"].flatten(), torch.stack(fd))
    # (9) backward diagonals: z0 = x02 (top-right), z2 = (x00 + x11 + x22) / 3, z4 = x20 (bottom-left)
    bd = [x[0, 2], (x[0, 1] + x[1, 2]) / 2, (x[0, 0] + x[1, 1] + x[2, 2]) / 3, (x[1, 0] + x[2, 1]) / 2, x[2, 0]]
    assert torch.allclose(pooled["bd"].flatten(), torch.stack(bd))


def _line_key(direction, width):
    return {
        "h": lambda i, j: i,
        "v": lambda i, j: j,
        "fd": lambda i, j: i + j,
        "bd": lambda i, j: i - j + width - 1,
    }[direction]


def _loop_pool(x, direction):
    """Plain-loop reference: mean over the pixels of each line, lines in index order."""
    n, c, h, w = x.shape
    key = _line_key(direction, w)
    lines: dict[int, list[tuple[int, int]]] = {}
    for i, j in itertools.product(range(h), range(w)):
        lines.setdefault(key(i, j), []).append((i, j))
    out = torch.zeros(n, c, len(lines), dtype=x.dtype)
    for k in sorted(lines):
        out[:, :, k] = torch.stack([x[:, :, i, j] for i, j in lines[k]]).mean(0)
    return out


def _loop_attention(asp, x):
    """Plain-loop reference of the attention map, computed the paper's way: pool, conv, sigmoid, broadcast."""
    n, c, h, w = x.shape
    attention = torch.ones(n, 1, h, w, dtype=x.dtype)
    for p, pair in enumerate(asp.pairs):
        weight, bias = asp.reduce.weight[p].view(c), asp.reduce.bias[p]
        for direction in pair:
            gate = torch.sigmoid(torch.einsum("c,ncl->nl", weight, _loop_pool(x, direction)) + bias)
            key = _line_key(direction, w)
            for i, j in itertools.product(range(h), range(w)):
                attention[:, 0, i, j] *= gate[:, key(i, j)]
    return attention


@pytest.mark.parametrize("shape", [(2, 3, 5, 8), (1, 4, 9, 4), (3, 2, 1, 6)])
def test_poolings_match_loop_reference_on_non_square_maps(shape):
    x = torch.randn(shape, dtype=torch.float64)
    pooled = ASP(shape[1]).double().pool(x)
    for direction in ("h", "v", "fd", "bd"):
        torch.testing.assert_close(pooled[direction], _loop_pool(x, direction))
    assert pooled["fd"].shape[-1] == pooled["bd"].shape[-1] == shape[2] + shape[3] - 1


ALL_SUBSETS = [s for r in range(1, 5) for s in itertools.combinations(("h", "v", "fd", "bd"), r)]


@pytest.mark.parametrize("directions", ALL_SUBSETS, ids="+".join)
def test_attention_matches_loop_reference_for_every_direction_subset(directions):
    torch.manual_seed(0)
    asp = ASP(3, directions=directions).double()
    x = torch.randn(2, 3, 6, 7, dtype=torch.float64)
    attention = asp.attention(x)
    assert attention.shape == (2, 1, 6, 7)
    torch.testing.assert_close(attention, _loop_attention(asp, x))
    torch.testing.assert_close(asp(x), x * attention)


def test_one_conv_per_direction_pair():
    assert ASP(16).reduce.weight.shape == (2, 16, 1, 1)  # (h, v) and (fd, bd)
    assert ASP(16, directions=("fd", "bd")).reduce.weight.shape == (1, 16, 1, 1)
    assert ASP(16, directions=("v", "bd")).pairs == (("v",), ("bd",))
    assert sum(p.numel() for p in ASP(116).parameters()) == 2 * (116 + 1)


def test_input_size_change_rebuilds_the_maps():
    asp = ASP(2).double()
    for shape in [(1, 2, 4, 5), (1, 2, 7, 3), (1, 2, 4, 5)]:
        x = torch.randn(shape, dtype=torch.float64)
        torch.testing.assert_close(asp.attention(x), _loop_attention(asp, x))


def test_fixed_maps_are_not_in_the_state_dict():
    asp = ASP(4)
    asp(torch.randn(1, 4, 5, 5))
    assert set(asp.state_dict()) == {"reduce.weight", "reduce.bias"}


@pytest.mark.parametrize("directions", [(), ("x",), ("h", "h")])
def test_bad_directions_are_refused(directions):
    with pytest.raises(ValueError, match="direction"):
        ASP(4, directions=directions)
