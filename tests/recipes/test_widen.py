"""Widening a trained U-Net keeps its function; the copies then drift apart."""

import pytest
import torch
from widen import widen_unet

from vocalsep.core.errors import ConfigError
from vocalsep.core.unet import EncoderDecoder, preset


def _trained_looking(config, seed=0):
    """A network with random weights and random norm statistics, in eval mode."""
    torch.manual_seed(seed)
    network = EncoderDecoder(config)
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
                module.running_mean.normal_(0, 0.3)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.normal_(1, 0.2)
                module.bias.normal_(0, 0.2)
    return network.eval()


@pytest.mark.parametrize(
    "overrides",
    [
        {"channels": (4, 8, 16, 32), "in_channels": 2, "out_channels": 2},
        {"channels": (3, 5, 7), "norm": "none"},
        {"channels": (4, 6, 8), "norm": "instance", "head": "logits"},
        {"dims": 1, "channels": (4, 8, 8), "kernel_size": 15, "up_kernel_size": 5},
    ],
)
@pytest.mark.parametrize("factor", [1.5, 2.0])
def test_widened_network_computes_the_same_function(overrides, factor):
    config = preset("jansson2017", **overrides)
    narrow = _trained_looking(config)
    state, wide_config = widen_unet(narrow.state_dict(), config, factor, noise=0.0)
    assert wide_config.channels == tuple(round(c * factor) for c in config.channels)
    wide = EncoderDecoder(wide_config)
    wide.load_state_dict(state)  # strict: every shape matches the wider network
    wide.eval()
    size = (2, config.in_channels, *([32, 24] if config.dims == 2 else [96]))
    x = torch.rand(size) * 3
    with torch.no_grad():
        expected, got = narrow(x), wide(x)
    assert torch.allclose(got, expected, atol=1e-5), float((got - expected).abs().max())
    # The seed picks which channels are copied: another seed gives another network ...
    other, _ = widen_unet(narrow.state_dict(), config, factor, noise=0.0, seed=1)
    assert any(not torch.equal(state[k], other[k]) for k in state if "encoder.0" in k)


def test_noise_breaks_the_symmetry_of_the_copies_but_keeps_the_old_channels():
    config = preset("jansson2017", channels=(4, 8, 16))
    narrow = _trained_looking(config)
    exact, wide_config = widen_unet(narrow.state_dict(), config, 1.5, noise=0.0)
    noisy, _ = widen_unet(narrow.state_dict(), config, 1.5, noise=0.05)
    weight, old = "encoder.1.0.weight", 8
    assert torch.equal(noisy[weight][:old], exact[weight][:old])
    assert not torch.equal(noisy[weight][old:], exact[weight][old:])
    wide = EncoderDecoder(wide_config).eval()
    wide.load_state_dict(noisy)
    x = torch.rand(1, 1, 32, 16)
    with torch.no_grad():
        difference = (wide(x) - narrow(x)).abs().max()
    assert 0 < difference < 0.2


def test_prefixed_keys_and_extra_entries_pass_through():
    config = preset("jansson2017", channels=(4, 8))
    state = {f"network.{k}": v for k, v in _trained_looking(config).state_dict().items()}
    state["input_scale"] = torch.ones(3)
    wide, _ = widen_unet(state, config, 2.0, prefix="network.")
    assert torch.equal(wide["input_scale"], state["input_scale"])
    assert wide["network.encoder.0.0.weight"].shape[0] == 8


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"skip": "add", "channels": (4, 4)}, "skip='concat'"),
        ({"upsample": "interpolate"}, "upsample='transposed'"),
        ({"norm": "group"}, "group"),
        ({"convs_per_level": 2, "head_kernel_size": 3}, "convs_per_level=1"),
    ],
)
def test_unsupported_networks_are_refused(overrides, message):
    config = preset("jansson2017", **{"channels": (4, 8), **overrides})
    with pytest.raises(ConfigError, match=message):
        widen_unet(EncoderDecoder(config).state_dict(), config, 1.5)


def test_narrowing_is_refused():
    config = preset("jansson2017", channels=(4, 8))
    with pytest.raises(ConfigError, match=">= 1"):
        widen_unet(EncoderDecoder(config).state_dict(), config, 0.5)
