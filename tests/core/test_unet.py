import io
import json
from itertools import pairwise

import pytest
import torch
from torch import nn

from vocalsep.core import ARCHITECTURES, build_network, network_config_class
from vocalsep.core.errors import ConfigError
from vocalsep.core.unet import PRESETS, EncoderDecoder, EncoderDecoderConfig, preset


@pytest.fixture
def tiny() -> EncoderDecoderConfig:
    """A Jansson-style 2-D U-Net, three levels deep."""
    return EncoderDecoderConfig(channels=(4, 8, 16), decoder_dropout=(0.5, 0.5))


CONFIGS = {
    "jansson-tiny": EncoderDecoderConfig(channels=(4, 8, 16), decoder_dropout=(0.5, 0.5)),
    "wave-u-net": EncoderDecoderConfig(
        dims=1,
        in_channels=2,
        out_channels=2,
        channels=(4, 8, 12),
        up_kernel_size=3,
        downsample="decimate",
        upsample="interpolate",
        norm="none",
        decoder_activation="leaky_relu",
        decoder_dropout=(),
        bottleneck_channels=16,
        head_kernel_size=1,
        input_skip=True,
    ),
    "fcn-add": EncoderDecoderConfig(channels=(4, 8, 16), skip="add", out_channels=2),
    "instance-stride3": EncoderDecoderConfig(
        channels=(4, 8), stride=3, kernel_size=3, norm="instance", encoder_activation="gelu"
    ),
    "group-logits-1d": EncoderDecoderConfig(
        dims=1,
        channels=(6, 12, 12),
        norm="group",
        upsample="interpolate",
        decoder_activation="tanh",
        head="logits",
        head_kernel_size=3,
        out_channels=3,
    ),
    "decimate-transposed": EncoderDecoderConfig(
        channels=(4, 8), downsample="decimate", head_kernel_size=3, decoder_dropout=(0.2,)
    ),
    "no-skips": EncoderDecoderConfig(channels=(4, 8, 16), skip="none", decoder_dropout=()),
    "two-convs-logits": EncoderDecoderConfig(
        in_channels=3,
        out_channels=5,
        channels=(4, 8, 16),
        kernel_size=3,
        decoder_dropout=(0.2,),
        head="logits",
        head_kernel_size=3,
        input_skip=True,
        convs_per_level=2,
    ),
    "three-convs-interpolate-1d": EncoderDecoderConfig(
        dims=1,
        channels=(4, 8),
        kernel_size=3,
        upsample="interpolate",
        decoder_dropout=(),
        head_kernel_size=1,
        convs_per_level=3,
    ),
}
SIZES = [1, 2, 7, 33, 64]


def make(config: EncoderDecoderConfig, seed: int = 0) -> EncoderDecoder:
    torch.manual_seed(seed)
    return build_network("unet", config)


def inputs(config: EncoderDecoderConfig, size: int, batch: int = 2) -> torch.Tensor:
    """Non-square for 2-D so that axis mix-ups show."""
    spatial = (size,) if config.dims == 1 else (size, size + 3)
    return torch.randn(batch, config.in_channels, *spatial)


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
class TestEncoderDecoder:
    @pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
    @torch.no_grad()
    def test_any_size_keeps_shape(self, config, train):
        model = make(config).train(train)
        for size in SIZES:
            x = inputs(config, size, batch=1)
            y = model(x)
            assert y.shape == (1, config.out_channels, *x.shape[2:])
            assert torch.isfinite(y).all()
            if config.head == "mask":
                assert y.min() >= 0 and y.max() <= 1

    def test_backward_reaches_every_parameter(self, config):
        model = make(config).train()
        model(inputs(config, 21)).square().mean().backward()
        for name, parameter in model.named_parameters():
            assert parameter.grad is not None, name
            assert torch.isfinite(parameter.grad).all(), name

    @torch.no_grad()
    def test_state_dict_round_trip(self, config):
        model = make(config).train()
        for _ in range(2):  # move the running norm statistics away from their initial values
            model(inputs(config, 33))
        model.eval()
        x = inputs(config, 33)
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        buffer.seek(0)
        fresh = make(config, seed=1).eval()
        assert not torch.equal(fresh(x), model(x))
        fresh.load_state_dict(torch.load(buffer, weights_only=True))
        assert torch.equal(fresh(x), model(x))

    def test_config_round_trip(self, config):
        data = json.loads(json.dumps(config.to_dict()))
        assert EncoderDecoderConfig.from_dict(data) == config
        assert network_config_class("unet").from_dict(data) == config
        assert isinstance(build_network("unet", data), EncoderDecoder)


def layers(model: nn.Module, kind: type) -> list:
    return [module for module in model.modules() if type(module) is kind]


def test_jansson2017_structure():
    config = PRESETS.get("jansson2017")(in_channels=1, out_channels=1)
    assert config == preset("jansson2017")
    model = build_network("unet", config)
    widths = [1, 16, 32, 64, 128, 256, 512]
    convs = layers(model, nn.Conv2d)
    assert [(c.in_channels, c.out_channels) for c in convs] == list(pairwise(widths))
    deconvs = layers(model, nn.ConvTranspose2d)
    # Concatenated skips double every decoder input but the deepest one.
    assert [(c.in_channels, c.out_channels) for c in deconvs] == [
        (512, 256), (512, 128), (256, 64), (128, 32), (64, 16), (32, 1),
    ]  # fmt: skip
    for conv in convs + deconvs:
        assert conv.kernel_size == (5, 5) and conv.stride == (2, 2)
    assert [conv.bias is not None for conv in convs + deconvs] == [False] * 11 + [True]
    assert [n.num_features for n in layers(model, nn.BatchNorm2d)] == [
        16, 32, 64, 128, 256, 512, 256, 128, 64, 32, 16,
    ]  # fmt: skip
    leaky = layers(model, nn.LeakyReLU)
    assert len(leaky) == 6 and all(a.negative_slope == 0.2 for a in leaky)
    assert len(layers(model, nn.ReLU)) == 5
    # The first three decoder layers drop out, the last deconv emits the mask directly.
    assert [d.p for d in layers(model, nn.Dropout)] == [0.5] * 3
    assert all(len(layers(model.decoder[i], nn.Dropout)) == 1 for i in range(3))
    assert isinstance(model.decoder[-1], nn.ConvTranspose2d)
    # Encoder 5x5 weights (no bias: BatchNorm follows), 25 * in * out:
    #   25 * (1*16 + 16*32 + 32*64 + 64*128 + 128*256 + 256*512) = 4_365_200
    # Decoder: 25 * (512*256 + 512*128 + 256*64 + 128*32 + 64*16 + 32*1) + 1 bias = 5_453_601
    # BatchNorm weight + bias: 2 * (1008 encoder + 496 decoder features) = 3_008
    assert sum(p.numel() for p in model.parameters()) == 4_365_200 + 5_453_601 + 3_008
    with torch.no_grad():
        mask = model.eval()(torch.rand(1, 1, 100, 30))
    assert mask.shape == (1, 1, 100, 30) and 0 <= mask.min() <= mask.max() <= 1


@torch.no_grad()
def test_windows_at_multiples_of_the_total_stride_are_exact(tiny):
    """With local norms the network is shift-equivariant by multiples of stride**depth (8 here),
    so a window with enough context reproduces the whole-input result: what tiling relies on."""
    model = make(tiny).eval()
    x = torch.randn(1, 1, 16, 256)
    whole = model(x)
    start, length, context = 64, 40, 48
    window = model(x[..., start - context : start + length + context])
    assert torch.allclose(window[..., context:-context], whole[..., start : start + length])
    shifted = model(x[..., start - context + 1 : start + length + context + 1])
    assert not torch.allclose(
        shifted[..., context:-context], whole[..., start + 1 : start + length + 1]
    )


def test_fcn_preset_adds_skips():
    config = preset("fcn", in_channels=2, out_channels=4)
    assert config.skip == "add" and config.replace(skip="concat") == preset(
        "jansson2017", in_channels=2, out_channels=4
    )
    deconvs = layers(build_network("unet", config), nn.ConvTranspose2d)
    assert [c.in_channels for c in deconvs] == [512, 256, 128, 64, 32, 16]


@pytest.mark.parametrize(
    "changes",
    [
        {"dims": 4},
        {"in_channels": 0},
        {"out_channels": 0},
        {"channels": ()},
        {"channels": (4, 0)},
        {"stride": 0},
        {"kernel_size": 4},
        {"kernel_size": 0},
        {"up_kernel_size": 2},
        {"head_kernel_size": -1},
        {"downsample": "pool"},
        {"upsample": "nearest"},
        {"norm": "layer"},
        {"encoder_activation": "swish"},
        {"decoder_activation": "softmax"},
        {"decoder_dropout": (0.5, 1.0)},
        {"decoder_dropout": (-0.1,)},
        {"skip": "sum"},
        {"bottleneck_channels": -1},
        {"head": "softmax"},
        {"input_skip": True},
        {"convs_per_level": 0},
        # Extra convs follow the last decoder layer, which then must not emit the output.
        {"convs_per_level": 2},
        # The decimate-mode skip at full resolution would be fused after the output layer.
        {"downsample": "decimate"},
        # Interpolating decoders add skips before their conv: widths 16 + 8 differ.
        {"skip": "add", "upsample": "interpolate"},
    ],
    ids=str,
)
def test_invalid_config_raises(tiny, changes):
    with pytest.raises(ConfigError):
        tiny.replace(**changes)


def test_unknown_names_raise(tiny):
    with pytest.raises(ConfigError, match="unknown architecture"):
        build_network("transformer", tiny)
    with pytest.raises(ConfigError, match="unknown architecture"):
        network_config_class("transformer")
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("jansson2018")
    with pytest.raises(ConfigError, match="unknown field"):
        preset("jansson2017", depth=3)
    with pytest.raises(ConfigError, match="unknown field"):
        build_network("unet", {"channel": (4, 8)})
    with pytest.raises(ConfigError, match="needs a EncoderDecoderConfig"):
        build_network("unet", object())
    assert "unet" in ARCHITECTURES and set(PRESETS) >= {"jansson2017", "fcn"}


def test_convs_per_level_structure():
    """Two convs per level: a strided conv and a 3x3 conv down; a transposed conv, the skip
    concatenation, and a 3x3 conv up (Ronneberger et al.'s U-Net with strided sampling)."""
    config = EncoderDecoderConfig(
        in_channels=3,
        out_channels=2,
        channels=(8, 16, 32),
        kernel_size=3,
        decoder_dropout=(),
        head="logits",
        head_kernel_size=1,
        convs_per_level=2,
    )
    model = build_network("unet", config)
    convs = [(c.in_channels, c.out_channels, c.stride[0]) for c in layers(model, nn.Conv2d)]
    assert convs == [
        (3, 8, 2), (8, 8, 1), (8, 16, 2), (16, 16, 1), (16, 32, 2), (32, 32, 1),  # encoder
        (32, 16, 1), (16, 8, 1), (8, 8, 1),  # after each fusion: 16+16 -> 16, 8+8 -> 8, 8 -> 8
        (8, 2, 1),  # head
    ]  # fmt: skip
    deconvs = [(c.in_channels, c.out_channels) for c in layers(model, nn.ConvTranspose2d)]
    assert deconvs == [(32, 16), (16, 8), (8, 8)]
    # With one conv per level nothing changes: the same parameter names as before.
    single = build_network("unet", config.replace(convs_per_level=1))
    assert single.refine is None
    assert all(not name.startswith("refine") for name, _ in single.named_parameters())
