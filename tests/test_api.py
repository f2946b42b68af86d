"""The public Python API as a user calls it."""

import numpy as np
import pytest
import soundfile as sf
import torch
from support import synth, write_wav

import vocalsep
from vocalsep.pretrained import ModelNotFoundError


def test_public_names():
    assert vocalsep.__version__
    for name in ("Separator", "load_separator", "separate_file", "predict_mask"):
        assert callable(getattr(vocalsep, name))


def test_separator_from_a_checkpoint_path(tiny_checkpoint):
    separator = vocalsep.Separator.from_pretrained(tiny_checkpoint, device="cpu")
    assert separator.stems == ["vocals", "accompaniment"]
    mixture = synth(44100, 30000, 2)
    stems = separator.separate(torch.from_numpy(mixture), 44100)
    assert stems["vocals"].shape == mixture.shape
    mask = separator.predict_mask(torch.rand(2, separator.config.stft.n_bins, 9))
    assert mask.shape == (2, 2, separator.config.stft.n_bins, 9)  # vocals, accompaniment
    same = vocalsep.predict_mask(torch.ones(1, 129, 3), separator)
    assert same.shape == (2, 1, 129, 3) and 0 <= same.min() and same.max() <= 1


def test_no_default_model_and_unknown_names(tmp_path, monkeypatch):
    from vocalsep import pretrained

    monkeypatch.setattr(pretrained, "DEFAULT_MODELS", {})
    with pytest.raises(ModelNotFoundError, match="no default"):
        vocalsep.Separator.from_pretrained()
    with pytest.raises(ModelNotFoundError, match="neither a shipped model"):
        vocalsep.load_separator("no-such-model")
    with pytest.raises(ModelNotFoundError, match="not a file"):
        vocalsep.load_separator(tmp_path)


def test_separate_file(tmp_path, tiny_checkpoint):
    song = write_wav(tmp_path / "song.wav", synth(16000, 40000, 1), 16000)
    seen = []
    written = vocalsep.separate_file(
        song,
        tmp_path / "out",
        model=tiny_checkpoint,
        device="cpu",
        format="flac",
        progress=lambda done, total: seen.append((done, total)),
    )
    assert set(written) == {"vocals", "accompaniment"}
    assert written["vocals"] == tmp_path / "out" / "song" / "vocals.flac"
    vocals, rate = sf.read(written["vocals"])
    assert rate == 16000 and vocals.shape == (40000,)
    assert seen and seen[-1] == (2.5, 2.5)
    assert np.all(np.diff([done for done, _ in seen]) > 0)


def test_a_long_song_is_written_in_order_and_a_failed_write_leaves_nothing(
    tmp_path, tiny_checkpoint, monkeypatch
):
    """Chunks are written on a background thread: the file must hold them in order (equal to
    the in-memory separation), and a write that fails on a later chunk is raised once and
    leaves no output and no temporary file behind."""
    from vocalsep.audio import writer as writer_module
    from vocalsep.audio.errors import AudioWriteError

    separator = vocalsep.Separator.from_pretrained(tiny_checkpoint, device="cpu", chunk_seconds=1)
    mixture = synth(16000, 16000 * 35, 1)  # 4 blocks of 10 s: 4 chunks, 8 writes
    song = write_wav(tmp_path / "song.wav", mixture, 16000)
    written = vocalsep.separate_file(song, tmp_path / "out", separator=separator)
    expected = separator.separate(sf.read(song, dtype="float32")[0], 16000)
    for stem, path in written.items():
        audio, _ = sf.read(path, dtype="float32")
        np.testing.assert_allclose(audio, expected[stem], atol=1e-4)  # 16-bit PCM

    calls = []
    write = writer_module.AudioWriter.write

    def failing(self, block):
        calls.append(1)
        if len(calls) == 5:
            raise AudioWriteError(f"cannot write {self.path}: disk full")
        write(self, block)

    monkeypatch.setattr(writer_module.AudioWriter, "write", failing)
    with pytest.raises(AudioWriteError, match="disk full"):
        vocalsep.separate_file(song, tmp_path / "again", separator=separator)
    assert len(calls) == 5  # nothing written after the failure
    assert not (tmp_path / "again").exists() or not list((tmp_path / "again").rglob("*.*"))


# -- waveform layouts ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_pass(tiny_checkpoint):
    """The tiny model and the stems of a stereo 16 kHz song, given as (channels, samples)."""
    separator = vocalsep.Separator.from_pretrained(tiny_checkpoint, device="cpu")
    song = synth(16000, 12000, 2)
    return separator, song, separator.separate(song, 16000)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("layout", ["channels_first", "channels_last", "mono"])
def test_every_layout_gives_the_same_stems_in_the_callers_layout(one_pass, kind, layout):
    separator, song, expected = one_pass
    if layout == "mono":
        song = song[:1]
        expected = separator.separate(song, 16000)
    given = {"channels_first": song, "channels_last": song.T, "mono": song[0]}[layout]
    if kind == "torch":
        given = torch.from_numpy(np.ascontiguousarray(given))
    stems = separator.separate(given, 16000)
    assert set(stems) == {"vocals", "accompaniment"}
    for name, value in stems.items():
        assert isinstance(value, torch.Tensor if kind == "torch" else np.ndarray)
        assert tuple(value.shape) == tuple(given.shape)
        back = np.asarray(value)
        back = {"channels_first": back, "channels_last": back.T, "mono": back[None]}[layout]
        np.testing.assert_allclose(back, expected[name], atol=1e-6)


def test_soundfile_read_goes_straight_in(tmp_path, one_pass):
    """The most common way to load audio in Python: `(samples, channels)` float64."""
    separator, song, expected = one_pass
    path = write_wav(tmp_path / "song.wav", song, 16000, subtype="PCM_16")
    stems = separator.separate(*sf.read(path))
    assert stems["vocals"].shape == (12000, 2)
    np.testing.assert_allclose(stems["vocals"].T, expected["vocals"], atol=2e-3)  # 16-bit
    pcm, rate = sf.read(path, dtype="int16")  # integer PCM is scaled to [-1, 1)
    np.testing.assert_allclose(
        separator.separate(pcm, rate)["vocals"].T, expected["vocals"], atol=2e-3
    )


@pytest.mark.parametrize("shape", [(2, 3, 100), (100_000, 100_000), (65, 70), (0,) * 2 + (3,), ()])
def test_a_shape_it_cannot_read_is_a_value_error_before_any_work(one_pass, shape):
    separator, _, _ = one_pass
    waveform = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), shape, [0] * len(shape))
    with pytest.raises(ValueError, match=r"shape .* give \(channels, samples\)"):
        separator.separate(waveform, 16000)


def test_stft_predict_mask_istft_is_separate_at_the_model_rate(one_pass):
    separator, song, expected = one_pass
    spectrum = separator.stft(song.T, 16000)  # any layout, here (samples, channels)
    assert np.iscomplexobj(spectrum) and spectrum.shape == (2, 129, 12000 // 64 + 1)
    masks = separator.predict_mask(spectrum)
    assert isinstance(masks, np.ndarray) and masks.shape == (2, *spectrum.shape)
    np.testing.assert_allclose(masks.sum(axis=0), 1.0, atol=1e-6)
    for index, stem in enumerate(separator.stems):
        waveform = separator.istft(masks[index] * spectrum, length=12000)
        # The same masks as `separate`, but for the song's first and last frame tile, where
        # `separate`'s network also hears the silence around the song.
        np.testing.assert_allclose(
            waveform[:, 2000:-2000], expected[stem][:, 2000:-2000], atol=1e-4
        )
        assert np.abs(waveform - expected[stem]).max() < 0.05
    # Torch in, torch out (on the CPU), with the same numbers.
    torch_spectrum = separator.stft(torch.from_numpy(song.T.copy()), 16000)
    assert torch.is_tensor(torch_spectrum) and torch_spectrum.is_complex()
    torch_masks = separator.predict_mask(torch_spectrum)
    assert torch.is_tensor(torch_masks)
    np.testing.assert_allclose(torch_masks.numpy(), masks, atol=1e-6)
    # Back at another rate: resampled, with the length asked for.
    back = separator.istft(spectrum, length=33075, sample_rate=44100)
    assert back.shape == (2, 33075)
    with pytest.raises(ValueError, match="complex"):
        separator.istft(np.abs(spectrum))
