"""One tester for every registered architecture and every model kind (as
segmentation_models_pytorch does): forward at odd sizes, backward, tiled output equal to one
pass, save and load.

It also shows that a new architecture is one file plus a registration: `GatedStack` below is
registered here and then works everywhere an architecture name is taken (networks, the audio
and image model configs, checkpoints, the Separator) without touching the package.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from support import synth
from torch import nn

from vocalsep.core import ARCHITECTURES, build_network, register_architecture
from vocalsep.core.config import Config
from vocalsep.core.networks import architecture_names, network_config
from vocalsep.core.tiling import TilePlan, overlap_add

# -- a new architecture, in one file ----------------------------------------------------------


@dataclass(frozen=True)
class GatedStackConfig(Config):
    """A stack of same-size gated convolutions (no down-sampling): `layers` of
    `conv(x) * sigmoid(gate(x))`, then a 1x1 output conv."""

    dims: int = 2
    in_channels: int = 1
    out_channels: int = 1
    width: int = 6
    layers: int = 2
    kernel_size: int = 3

    @property
    def receptive_field(self) -> int:
        return self.layers * (self.kernel_size // 2)


class GatedStack(nn.Module):
    def __init__(self, config: GatedStackConfig) -> None:
        super().__init__()
        conv = {1: nn.Conv1d, 2: nn.Conv2d}[config.dims]
        pad = config.kernel_size // 2
        widths = [config.in_channels] + [config.width] * config.layers
        self.convs = nn.ModuleList(
            conv(i, 2 * o, config.kernel_size, padding=pad) for i, o in itertools.pairwise(widths)
        )
        self.out = conv(config.width, config.out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.convs:
            value, gate = layer(x).chunk(2, dim=1)
            x = value * torch.sigmoid(gate)
        return self.out(x)


if "gated-stack" not in ARCHITECTURES:
    register_architecture("gated-stack", GatedStackConfig, GatedStack)

# -- the tester -------------------------------------------------------------------------------

SMALL = {
    "unet": {"channels": (4, 8)},
    "gated-stack": {},
    "resunet": {"channels": (4, 8, 8)},
    "attention_unet": {"channels": (4, 8, 8)},
    "fcn": {"channels": (4, 8, 8)},
    "segnet": {"channels": (4, 8, 8)},
    "gcn": {"channels": (4, 8, 8), "large_kernel": 5},
    "pspnet": {"channels": (4, 8, 8), "bins": (1, 2)},
    "deeplabv3plus": {"channels": (4, 8, 8), "rates": (1, 2)},
    "r2unet": {"channels": (4, 8, 8)},
    "multiresunet": {"channels": (6, 12, 12)},
    "fcdensenet": {"first_channels": 4, "layers": (2, 2), "bottleneck_layers": 2, "growth": 3},
    "mmdensenet": {"first_channels": 4, "layers": (2, 2), "bottleneck_layers": 2, "growth": 3},
    "waveunet": {"channels": (4, 8), "bottleneck_channels": 8},
}
# Bands along frequency (the second-to-last axis) make sense in 2-D only; tiles run along time.
ONLY_2D = {"mmdensenet"}
# Pooled global context (pyramid pooling, an image-level branch): every output depends on the
# whole input, so tiles cannot give one pass; their tiled use is tested for shape and sums only.
GLOBAL_CONTEXT = {"pspnet", "deeplabv3plus"}


def small(name: str, dims: int, **fields):
    """A small config of architecture `name`: `dims`, the channels and little else."""
    return network_config(name, {**SMALL.get(name, {}), "dims": dims, **fields})


def test_every_architecture_is_covered_by_this_tester():
    assert set(architecture_names()) <= set(SMALL), "add the new architecture to SMALL"


@pytest.mark.parametrize("name", architecture_names())
@pytest.mark.parametrize("dims", [1, 2])
def test_forward_at_odd_sizes_and_backward(name, dims):
    if dims == 1 and name in ONLY_2D:
        pytest.skip("bands along frequency: 2-D only")
    torch.manual_seed(0)
    network = build_network(name, small(name, dims, in_channels=2, out_channels=3))
    sizes = [(37,), (23, 45)][dims - 1]
    inputs = torch.randn(2, 2, *sizes, requires_grad=True)
    outputs = network(inputs)
    assert outputs.shape == (2, 3, *sizes)
    outputs.square().mean().backward()
    grads = [p.grad for p in network.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert inputs.grad.abs().sum() > 0


@pytest.mark.parametrize("name", architecture_names())
def test_dims_and_channels_are_enough(name):
    """The channels are all a default network needs (in its default dims: 2, or 1 for
    waveunet)."""
    config = network_config(name, {"in_channels": 1, "out_channels": 2})
    network = build_network(name, config)
    sizes = (40, 24)[: config.dims] if config.dims == 2 else (40,)
    assert network(torch.randn(1, 1, *sizes)).shape == (1, 2, *sizes)


@pytest.mark.parametrize("name", architecture_names())
def test_tiles_with_the_receptive_field_as_context_give_one_pass(name):
    if name in GLOBAL_CONTEXT:
        assert small(name, 1).receptive_field is None  # says so, for the tilers
        pytest.skip("global context: no finite receptive field, tiles cannot equal one pass")
    torch.manual_seed(1)
    dims = 2 if name in ONLY_2D else 1  # a 2-D input is tiled along its last axis (time)
    extra = {"norm": "none"} if name == "unet" else {}
    config = small(name, dims, in_channels=1, out_channels=2, **extra)
    network = build_network(name, config).eval()
    signal = torch.randn(1, 1, *([24] if dims == 2 else []), 300)
    shift = getattr(config, "shift_multiple", 1)
    plan = TilePlan(tile=8 * shift, overlap=0, context=-(-config.receptive_field // shift) * shift)
    with torch.no_grad():
        whole = network(signal)
        tiled = overlap_add(network, signal, [plan])
    assert plan.num_tiles(300) > 2
    # Equal away from the signal's ends, where one pass pads each layer's input with zeros
    # and a tile sees the layers' responses to zeros instead.
    inner = slice(config.receptive_field + shift, 300 - config.receptive_field - shift)
    torch.testing.assert_close(tiled[..., inner], whole[..., inner], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", architecture_names())
def test_save_and_load_give_the_same_network(name, tmp_path):
    torch.manual_seed(2)
    config = small(name, 2, in_channels=2, out_channels=2)
    network = build_network(name, config).eval()
    path = tmp_path / "weights.pt"
    torch.save({"config": config.to_dict(), "state": network.state_dict()}, path)
    saved = torch.load(path, weights_only=True)
    again = build_network(name, saved["config"]).eval()
    again.load_state_dict(saved["state"])
    inputs = torch.randn(1, 2, 16, 20)
    torch.testing.assert_close(again(inputs), network(inputs))


# -- every model kind with every architecture -------------------------------------------------


def separation_model(kind: str, architecture: str):
    from vocalsep.audio.models import (
        SpectrogramMaskModel,
        SpectrogramModelConfig,
        WaveformModel,
        WaveformModelConfig,
    )
    from vocalsep.audio.stft import STFTConfig

    torch.manual_seed(3)
    if kind == "waveform":
        context = 64 if architecture in GLOBAL_CONTEXT else 0  # 0: the receptive field
        config = WaveformModelConfig(
            sample_rate=8000, audio_channels=2, tile_samples=512, tile_context=context
        )
        dims, extra = 1, {"head": "logits"} if architecture == "unet" else {}
        network = small(architecture, dims, in_channels=2, out_channels=2, **extra)
        return WaveformModel(config, architecture, network).eval()
    config = SpectrogramModelConfig(
        sample_rate=8000,
        stft=STFTConfig(n_fft=128, hop_length=32),
        audio_channels=2,
        tile_frames=32,
        tile_overlap=8,
        tile_context=8,
    )
    network = small(architecture, 2, in_channels=2, out_channels=2)
    return SpectrogramMaskModel(config, architecture, network).eval()


@pytest.mark.parametrize("architecture", architecture_names())
@pytest.mark.parametrize("kind", ["spectrogram-mask", "waveform"])
def test_separation_models_of_every_architecture(kind, architecture, tmp_path):
    from vocalsep.audio.separator import Separator

    if kind == "waveform" and architecture in ONLY_2D:
        pytest.skip("a waveform model is 1-D")

    model = separation_model(kind, architecture)
    song = synth(8000, 8000 * 3, 2)
    whole = Separator(model, chunk_seconds=100.0).separate(song, 8000)
    chunked = Separator(model, chunk_seconds=0.7, overlap_seconds=0.1).separate(song, 8000)
    exact = architecture == "gated-stack" or kind == "waveform"  # the receptive field covered
    if exact and architecture not in GLOBAL_CONTEXT:
        for stem in whole:
            assert np.abs(whole[stem] - chunked[stem]).max() < 1e-4
    np.testing.assert_allclose(whole["vocals"] + whole["accompaniment"], song, atol=1e-5)
    path = tmp_path / "model.ckpt"
    model.save(path)
    loaded = Separator.from_pretrained(path).separate(song, 8000)
    for stem in whole:
        np.testing.assert_allclose(loaded[stem], whole[stem], atol=1e-6)


@pytest.mark.parametrize("architecture", architecture_names())
def test_segmentation_models_of_every_architecture(architecture, tmp_path):
    from vocalsep.image.models import SegmentationModel, SegmentationModelConfig, load_model
    from vocalsep.image.models import network_config as image_network
    from vocalsep.image.predict import predict_labels

    torch.manual_seed(4)
    config = SegmentationModelConfig(
        class_names=("a", "b", "c"), in_channels=3, tile_size=32, tile_overlap=8, tile_context=8
    )
    fields = SMALL.get(architecture, {})
    network = image_network(3, 3, architecture, **fields)
    model = SegmentationModel(config, architecture, network).eval()
    picture = np.random.default_rng(0).integers(0, 256, (45, 70, 3), dtype=np.uint8)
    labels = predict_labels(model, picture)
    assert labels.shape == (45, 70) and labels.max() < 3
    model.save(tmp_path / "model.ckpt")
    again = predict_labels(load_model(tmp_path / "model.ckpt"), picture)
    np.testing.assert_array_equal(again, labels)


def test_a_training_task_builds_the_architecture_it_names(tmp_path):
    from vocalsep.api import build_task
    from vocalsep.train import load_run_config

    config = tmp_path / "run.toml"
    config.write_text(
        'task = "separation"\n[task_config]\narchitecture = "gated-stack"\npreset = ""\n'
        "network = { width = 5 }\n"
        "[task_config.model]\nsample_rate = 8000\n"
        "stft = { n_fft = 128, hop_length = 32 }\n"
    )
    task = build_task(load_run_config(config))
    model = task.build_model()
    assert model.architecture == "gated-stack" and isinstance(model.network, GatedStack)
    assert model.network_config.width == 5 and model.network_config.in_channels == 1
    with pytest.raises(Exception, match="builds a unet"):
        build_task(load_run_config(config, ['task_config.preset="jansson2017"']))


@pytest.mark.parametrize("factor", [2, 4])
def test_fcn_upsampling_starts_as_linear_interpolation(factor):
    from vocalsep.core.fcn import bilinear_transpose

    ramp = torch.arange(20, dtype=torch.float32).reshape(1, 1, 20).repeat(1, 2, 1)
    up = bilinear_transpose(1, 2, factor)(ramp).detach()
    assert up.shape == (1, 2, 20 * factor)
    inner = up[..., 2 * factor : -2 * factor]
    steps = inner[..., 1:] - inner[..., :-1]
    torch.testing.assert_close(steps, torch.full_like(steps, 1 / factor))  # a finer ramp
    torch.testing.assert_close(up[:, 0], up[:, 1])  # each channel on its own


@pytest.mark.parametrize("upsample", ["transposed", "interpolate", "learned"])
def test_the_volumetric_unet(upsample):
    """`unet` with dims=3 is Cicek et al. 2016's 3-D U-Net: volumes of any size."""
    torch.manual_seed(5)
    config = small("unet", 3, in_channels=1, out_channels=2, upsample=upsample)
    network = build_network("unet", config)
    volume = torch.randn(2, 1, 9, 14, 11, requires_grad=True)
    out = network(volume)
    assert out.shape == (2, 2, 9, 14, 11)
    out.square().mean().backward()
    assert volume.grad.abs().sum() > 0


def test_waveunet_is_stoller_et_al_by_default():
    from vocalsep.core.unet import preset

    config = network_config("waveunet", {"in_channels": 2, "out_channels": 2})
    assert config.to_dict() == preset("waveunet", in_channels=2, out_channels=2).to_dict()
