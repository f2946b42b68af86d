"""The 1-D side of the core as Wave-U-Net uses it: learned interpolation, the receptive field
that tiling relies on, and the "waveunet" preset."""

import pytest
import torch
from torch import nn

from vocalsep.core import build_network
from vocalsep.core.blocks import LearnedInterpolation
from vocalsep.core.errors import ConfigError
from vocalsep.core.unet import EncoderDecoderConfig, preset


def test_learned_interpolation_starts_linear_on_the_decimation_grid():
    x = torch.randn(2, 3, 9)
    up = LearnedInterpolation(1, 3, 2)
    y = up(x)
    assert y.shape == (2, 3, 18)
    assert torch.equal(y[..., ::2], x)  # sample j lands on 2j, where decimation takes it from
    assert torch.allclose(y[..., 1:-1:2], (x[..., :-1] + x[..., 1:]) / 2, atol=1e-6)
    assert torch.allclose(y[..., -1], x[..., -1])  # the last sample is repeated
    y3 = LearnedInterpolation(1, 3, 3)(x)
    assert torch.allclose(y3[..., 1:-3:3], x[..., :-1] * 2 / 3 + x[..., 1:] / 3, atol=1e-6)
    # 2-D: separable, so a bilinear ramp stays a ramp.
    ramp = (torch.arange(5.0)[:, None] + 2 * torch.arange(4.0))[None, None]
    up2 = LearnedInterpolation(2, 1, 2)(ramp)[..., :-1, :-1]
    expected = (torch.arange(9.0)[:, None] / 2 + torch.arange(7.0))[None, None]
    assert torch.allclose(up2, expected, atol=1e-5)


def test_learned_interpolation_weights_are_per_channel_and_learned():
    up = LearnedInterpolation(1, 2, 2)
    with torch.no_grad():
        up.logits[0, 1] = 20.0  # channel 1: the new sample copies the next one
    x = torch.randn(1, 2, 6, requires_grad=True)
    y = up(x)
    assert torch.allclose(y[0, 1, 1:-1:2], x[0, 1, 1:], atol=1e-6)
    assert torch.allclose(y[0, 0, 1:-1:2], (x[0, 0, :-1] + x[0, 0, 1:]) / 2, atol=1e-6)
    y.square().sum().backward()
    assert up.logits.grad is not None and up.logits.grad[0, 0].abs().sum() > 0


LOCAL = {  # networks whose output at a position depends only on a window of the input
    "waveunet-tiny": dict(channels=(4, 8, 12), bottleneck_channels=16),
    "interpolate": dict(channels=(4, 8), upsample="interpolate", bottleneck_channels=0),
    "transposed": dict(channels=(4, 8), upsample="transposed", head_kernel_size=3),
    "strided": dict(channels=(4, 8, 8), downsample="conv", upsample="transposed", input_skip=False),
    "stride3-batchnorm": dict(channels=(4, 6), stride=3, kernel_size=7, norm="batch"),
}


@pytest.mark.parametrize("changes", LOCAL.values(), ids=LOCAL.keys())
@torch.no_grad()
def test_receptive_field_bounds_what_an_output_sees(changes):
    config = preset("waveunet", in_channels=2, out_channels=2, **changes)
    torch.manual_seed(0)
    network = build_network("unet", config).eval()
    field, shift = config.receptive_field, config.shift_multiple
    x = torch.randn(1, 2, 8 * field + 7 * shift)
    whole = network(x)
    # Changing the input just beyond the field changes nothing at the position...
    position = 4 * field
    changed = x.clone()
    changed[..., : position - field] += torch.randn(position - field)
    changed[..., position + field + 1 :] += torch.randn(x.shape[-1] - position - field - 1)
    assert torch.allclose(network(changed)[..., position], whole[..., position], atol=1e-5)
    # ... and a window with that much context, on the shift grid, reproduces the whole input.
    start = _align(2 * field, shift)
    length = 3 * shift + 5
    window = network(x[..., start - _align(field, shift) : start + length + field])
    kept = window[..., _align(field, shift) :][..., :length]
    assert torch.allclose(kept, whole[..., start : start + length], atol=1e-5)


def _align(samples: int, unit: int) -> int:
    return -(-samples // unit) * unit


def test_receptive_field_formula():
    # Wave-U-Net: per level a size-15 conv (7 each side) and a size-5 conv (2 each side) plus
    # one sample of interpolation, at resolutions 2**k; a size-15 bottleneck at 2**12.
    assert preset("waveunet").receptive_field == (7 + 2 + 1) * (2**12 - 1) + 7 * 2**12
    jansson = preset("jansson2017")  # transposed convs: no interpolation reach
    assert jansson.receptive_field == (2 + 2) * (2**6 - 1)
    # One level, two size-5 convs per level: encoder conv 2, decoder convs 2 + 2, interpolation
    # 3, and the encoder's extra conv 2 counted at the next resolution (where a strided encoder
    # has it): 2 * 2.
    two = EncoderDecoderConfig(
        channels=(4,), convs_per_level=2, head_kernel_size=1, downsample="decimate"
    )
    assert two.replace(upsample="interpolate").receptive_field == 2 + 2 + 2 + 3 + 2 * 2


def layers(model: nn.Module, kind: type) -> list:
    return [module for module in model.modules() if type(module) is kind]


def test_waveunet_preset_structure():
    """Stoller et al. (2018), mono in and one difference output (their M1-M3 networks)."""
    config = preset("waveunet", in_channels=1, out_channels=1)
    model = build_network("unet", config)
    widths = [24 * level for level in range(13)]  # 0 stands for the input's 1 channel
    widths[0] = 1
    convs = layers(model, nn.Conv1d)
    encoder = [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in convs[:13]]
    assert encoder == [(widths[k], widths[k + 1], 15) for k in range(12)] + [(288, 312, 15)]
    decoder = [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in convs[13:25]]
    # Level k (deepest first) upsamples the deeper output and concatenates the skip.
    deeper = [312, *[24 * (k + 2) for k in reversed(range(11))]]
    assert decoder == [
        (d + 24 * (k + 1), 24 * (k + 1), 5)
        for d, k in zip(deeper, reversed(range(12)), strict=True)
    ]
    assert (convs[25].in_channels, convs[25].out_channels, convs[25].kernel_size) == (25, 1, (1,))
    assert len(convs) == 26 and not layers(model, nn.ConvTranspose1d)
    assert [up.logits.shape[1] for up in model.upsamplers] == deeper
    assert len(layers(model, nn.LeakyReLU)) == 25 and not layers(model, nn.BatchNorm1d)
    weights = sum(i * o * k + o for i, o, k in encoder + decoder) + 25 + 1 + sum(deeper)
    assert sum(p.numel() for p in model.parameters()) == weights
    with torch.no_grad():
        y = model(torch.randn(1, 1, 5000))
    assert y.shape == (1, 1, 5000)


def test_learned_upsampling_needs_no_new_fields_and_keeps_other_networks():
    """Spectrogram networks keep their parameter names (shipped checkpoints still load)."""
    names = set(build_network("unet", preset("jansson2017")).state_dict())
    assert not any(name.startswith("upsamplers") for name in names)
    with pytest.raises(ConfigError):
        preset("waveunet", upsample="nearest")
