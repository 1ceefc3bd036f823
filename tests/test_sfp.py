"""SFP (Sect. 3.3): wavelet (LL band) pooling per channel group, and the channel gate."""

import numpy as np
import pytest
import pywt
import torch

from edgefer.models import SFP


def _reference_descriptor(x, sfp):
    """GAP of pywt.wavedec2's LL band, channel by channel, with the group's level."""
    groups = torch.arange(x.shape[1]).chunk(len(sfp.levels))
    level_of = {int(c): level for level, chunk in zip(sfp.levels, groups, strict=True) for c in chunk}
    out = np.zeros(x.shape[:2])
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            ll = pywt.wavedec2(x[n, c].numpy(), sfp.wavelet.name, mode=sfp.mode, level=level_of[c])[0]
            out[n, c] = ll.mean()
    return torch.from_numpy(out)


@pytest.mark.parametrize("mode", ["symmetric", "periodization", "zero"])
@pytest.mark.parametrize("wavelet", ["haar", "db2", "sym3"])
def test_descriptor_is_gap_of_pywt_ll_at_levels_1_to_4(wavelet, mode):
    # Four groups at levels 1..4; 80 x 96 fits four levels of sym3 (filter length 6).
    sfp = SFP(10, groups=4, wavelet=wavelet, mode=mode).double()
    x = torch.randn(2, 10, 80, 96, dtype=torch.float64)
    torch.testing.assert_close(sfp.descriptor(x), _reference_descriptor(x, sfp), rtol=1e-10, atol=1e-12)


def test_groups_are_torch_chunk_groups_and_levels_are_configurable():
    sfp = SFP(7, groups=4, levels=(0, 2, 1, 3), wavelet="db1")
    assert sfp.group_sizes == tuple(len(c) for c in torch.arange(7).chunk(4)) == (2, 2, 2, 1)
    x = torch.randn(1, 7, 16, 16, dtype=torch.float64)
    sfp = sfp.double()
    torch.testing.assert_close(sfp.descriptor(x), _reference_descriptor(x, sfp))
    # Level 0 is plain global average pooling.
    torch.testing.assert_close(sfp.descriptor(x)[:, :2], x[:, :2].mean((2, 3)))


def test_forward_scales_channels_by_sigmoid_of_linear_descriptor():
    sfp = SFP(6, groups=3).double()
    x = torch.randn(2, 6, 28, 28, dtype=torch.float64)
    scale = torch.sigmoid(sfp.fc(sfp.descriptor(x)))
    torch.testing.assert_close(sfp(x), x * scale[:, :, None, None])
    assert isinstance(sfp.fc, torch.nn.Linear) and sfp.fc.weight.shape == (6, 6)


@pytest.mark.parametrize("wavelet", ["db1", "db20", "sym2", "sym20", "coif3", "bior2.2", "dmey"])
def test_any_pywavelets_discrete_wavelet_is_accepted(wavelet):
    sfp = SFP(3, groups=1, wavelet=wavelet)
    size = 2 * pywt.Wavelet(wavelet).dec_len
    assert sfp.descriptor(torch.randn(1, 3, size, size)).shape == (1, 3)


@pytest.mark.parametrize("wavelet", ["morl", "mexh", "nope", "db99"])
def test_non_discrete_or_unknown_wavelets_are_refused(wavelet):
    with pytest.raises(ValueError, match="not a PyWavelets discrete wavelet"):
        SFP(6, wavelet=wavelet)


def test_input_too_small_for_the_level_is_refused():
    sfp = SFP(3, groups=3, wavelet="db2")  # level 3 of db2 needs >= 24 px
    sfp(torch.randn(1, 3, 24, 24))
    with pytest.raises(ValueError, match="too small for a 3-level DWT"):
        sfp(torch.randn(1, 3, 14, 14))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"groups": 3, "levels": (1, 2)}, "one level per group"),
        ({"groups": 2, "levels": (1, -1)}, ">= 0"),
        ({"mode": "wrap"}, "unknown wavelet mode"),
        ({"groups": 0}, "positive number of groups"),
    ],
)
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SFP(8, **kwargs)


def test_channel_counts_that_torch_chunk_cannot_split_into_the_groups_are_refused():
    with pytest.raises(ValueError, match=r"torch\.chunk splits 5 channels into 3 groups"):
        SFP(5, groups=4)
