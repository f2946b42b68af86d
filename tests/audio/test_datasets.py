"""Training data: synthesized mixtures, augmentations, paired folders, MUSDB18 via musdb."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support import MUSDB_TRAIN, MUSDB_VALID, synth, write_musdb_wav, write_wav

from vocalsep.audio import augment
from vocalsep.audio.datasets import (
    AugmentConfig,
    DatasetError,
    ExcerptSpec,
    SynthesizedConfig,
    SynthesizedMixtures,
)
from vocalsep.audio.pools import AudioPool, SourceSpec, split_files
from vocalsep.audio.toy import write_toy_sources
from vocalsep.core.errors import ConfigError

RATE = 8000


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return write_toy_sources(tmp_path_factory.mktemp("toy"), sample_rate=RATE, seconds=6.0)


def synthesized(toy, split="train", seed=0, channels=2, cache_dir=None, **changes):
    config = SynthesizedConfig(
        vocals=(SourceSpec(str(toy / "vocals"), validation_groups=("singer1",)),),
        accompaniment=(SourceSpec(str(toy / "accompaniment"), validation_groups=("track1",)),),
        **changes,
    )
    spec = ExcerptSpec(split, RATE, channels, segment_seconds=1.5, seed=seed, cache_dir=cache_dir)
    return SynthesizedMixtures(config, spec)


def test_examples_are_deterministic_and_sum_to_the_mixture(toy, tmp_path):
    first, again = synthesized(toy), synthesized(toy, cache_dir=tmp_path / "cache")
    for index in (0, 1, 17, 10**9):
        a, b = first[index], again[index]
        assert set(a) == {"mixture", "vocals", "accompaniment"}
        for key in a:
            assert a[key].shape == (2, int(1.5 * RATE)) and a[key].dtype == np.float32
            np.testing.assert_allclose(a[key], b[key], atol=1e-3)  # float16 cache vs RAM
        np.testing.assert_allclose(a["mixture"], a["vocals"] + a["accompaniment"], atol=1e-6)
        assert np.abs(a["mixture"]).max() <= 0.95 + 1e-6
    assert list((tmp_path / "cache").glob("*.npy"))  # decoded once into the cache
    assert not np.allclose(first[0]["mixture"], first[1]["mixture"])
    assert not np.allclose(first[0]["mixture"], synthesized(toy, seed=1)[0]["mixture"])


def test_silent_vocal_share(toy):
    dataset = synthesized(toy, silent_vocals=0.5)
    silent = [np.abs(dataset[i]["vocals"]).max() == 0 for i in range(60)]
    assert 15 <= sum(silent) <= 45
    assert all(
        np.abs(synthesized(toy, silent_vocals=0.0)[i]["vocals"]).max() > 0 for i in range(20)
    )


def test_solo_vocal_share(toy):
    """A share of the examples with vocals has the vocals alone; with none asked for, the
    examples are exactly those of a dataset that has no such option (same random draws)."""
    dataset = synthesized(toy, silent_vocals=0.0, solo_vocals=0.5)
    examples = [dataset[i] for i in range(60)]
    solo = [np.abs(e["accompaniment"]).max() == 0 for e in examples]
    assert 15 <= sum(solo) <= 45
    for example, alone in zip(examples, solo, strict=True):
        assert np.abs(example["vocals"]).max() > 0
        if alone:
            np.testing.assert_array_equal(example["mixture"], example["vocals"])
    plain, none = synthesized(toy), synthesized(toy, solo_vocals=0.0)
    for i in range(10):
        np.testing.assert_array_equal(plain[i]["mixture"], none[i]["mixture"])
        assert np.abs(plain[i]["accompaniment"]).max() > 0


def test_split_by_group_never_shares_a_recording(toy):
    spec = SourceSpec(str(toy / "vocals"), validation_groups=("singer1", "singer4"))
    train, validation = split_files(spec, "train"), split_files(spec, "validation")
    assert not set(train) & set(validation)
    assert {path.parent.name for path in validation} == {"singer1", "singer4"}
    assert len(train) + len(validation) == len(list((toy / "vocals").rglob("*.wav")))
    with pytest.raises(DatasetError, match="nobody"):
        split_files(SourceSpec(str(toy / "vocals"), validation_groups=("nobody",)), "train")
    with pytest.raises(DatasetError, match="does not exist"):
        split_files(SourceSpec(str(toy / "missing")), "train")


def test_a_folder_that_holds_nothing_out_is_training_only(toy):
    held = SourceSpec(str(toy / "accompaniment"), validation_groups=("track1",))
    extra = SourceSpec(str(toy / "vocals"), weight=0.5)  # no validation_groups, share 0
    train = AudioPool([held, extra], "train", RATE, None)
    validation = AudioPool([held, extra], "validation", RATE, None)
    assert len(train.groups) == 2 and len(validation.groups) == 1
    assert [Path(name).name for name in validation.names[0]] == ["track1.wav"]
    # With no folder holding anything out there is no validation set: say so.
    with pytest.raises(DatasetError, match="no files left for the validation split"):
        AudioPool([extra], "validation", RATE, None)


def test_validation_set_is_identical_run_to_run(toy):
    a = synthesized(toy, split="validation", seed=5)
    b = synthesized(toy, split="validation", seed=5)
    for index in range(4):
        np.testing.assert_array_equal(a[index]["mixture"], b[index]["mixture"])


def test_level_range_is_respected(toy):
    dataset = synthesized(
        toy, vocal_level_db=(-3.0, -3.0), silent_vocals=0.0, augment=AugmentConfig(p_layer=0)
    )
    for index in range(10):
        example = dataset[index]
        ratio = augment.rms(example["vocals"]) / augment.rms(example["accompaniment"])
        assert 20 * np.log10(ratio) == pytest.approx(-3.0, abs=0.05)


def dominant_frequency(audio: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio[0] * np.hanning(audio.shape[-1])))
    return float(np.fft.rfftfreq(audio.shape[-1], 1 / rate)[spectrum.argmax()])


def test_pitch_shift_and_time_stretch():
    rate = 16000
    t = np.arange(rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t))[None].astype(np.float32)
    shifted = augment.pitch_shift(tone, 12.0, rate)
    assert shifted.shape == tone.shape
    assert dominant_frequency(shifted, rate) == pytest.approx(880, rel=0.02)
    down = augment.pitch_shift(tone, -2.0, rate)
    assert dominant_frequency(down, rate) == pytest.approx(440 * 2 ** (-2 / 12), rel=0.02)
    slower = augment.time_stretch(tone, 0.8)
    assert slower.shape == (1, round(rate / 0.8))
    assert dominant_frequency(slower, rate) == pytest.approx(440, rel=0.02)
    faster = augment.change_speed(tone, 1.25, rate)
    assert faster.shape[-1] == round(rate / 1.25)


def test_eq_reverb_and_placement_keep_shapes():
    rng = np.random.default_rng(0)
    mono = synth(RATE, RATE, 1)
    assert augment.random_eq(mono, rng, RATE).shape == mono.shape
    wet = augment.reverb(mono, rng, RATE)
    assert wet.shape == mono.shape and not np.allclose(wet, mono)
    stereo = augment.to_channels(mono, 2, rng, max_pan=0.5)
    assert stereo.shape == (2, RATE)
    # Constant-power panning: the total power of the two channels is twice the mono power.
    np.testing.assert_allclose(np.sum(stereo**2), 2 * np.sum(mono**2), rtol=1e-4)
    assert augment.to_channels(stereo, 1, rng).shape == (1, RATE)


def test_compressor_narrows_dynamics_and_keeps_rms():
    rng = np.random.default_rng(0)
    t = np.arange(2 * RATE) / RATE
    tone = np.sin(2 * np.pi * 220 * t)
    # A loud second followed by a quiet one: 20 dB apart.
    audio = (tone * np.where(t < 1, 0.5, 0.05))[None].astype(np.float32)
    out = augment.compress(audio, rng, RATE, ratio=(4.0, 4.0), depth_db=(24.0, 24.0))
    assert out.shape == audio.shape
    assert augment.rms(out) == pytest.approx(augment.rms(audio), rel=1e-3)

    def gap_db(x):
        return 20 * np.log10(augment.rms(x[:, : RATE // 2]) / augment.rms(x[:, -RATE // 2 :]))

    assert gap_db(audio) == pytest.approx(20.0, abs=0.1)
    assert gap_db(out) < 12.0  # both halves above threshold: 20 dB / 4 ~ 5 dB, some release


def test_bus_compression_ducks_every_source_with_the_mix():
    rng = np.random.default_rng(0)
    t = np.arange(2 * RATE) / RATE
    vocals = (0.1 * np.sin(2 * np.pi * 330 * t))[None].astype(np.float32)  # steady level
    # Loud accompaniment in the first second, quiet in the second: 20 dB apart.
    music = (np.sin(2 * np.pi * 110 * t) * np.where(t < 1, 0.5, 0.05))[None].astype(np.float32)
    out_vocals, out_music = augment.bus_compress(
        [vocals, music], rng, RATE, ratio=(4.0, 4.0), depth_db=(24.0, 24.0)
    )
    mixture, out_mixture = vocals + music, out_vocals + out_music
    assert augment.rms(out_mixture) == pytest.approx(augment.rms(mixture), rel=1e-3)
    # One gain curve for both: the ratio of the sources is unchanged at every sample ...
    valid = (np.abs(vocals) > 1e-3) & (np.abs(music) > 1e-3)
    np.testing.assert_allclose(
        out_vocals[valid] / vocals[valid], out_music[valid] / music[valid], rtol=1e-3
    )

    def gap_db(x):
        return 20 * np.log10(augment.rms(x[:, : RATE // 2]) / augment.rms(x[:, -RATE // 2 :]))

    # ... so the steady vocals are ducked in the loud passage, and the mix is narrowed.
    assert gap_db(vocals) == pytest.approx(0.0, abs=0.1)
    assert gap_db(out_vocals) < -6.0
    assert gap_db(out_mixture) < gap_db(mixture) - 8.0


def test_bus_compression_in_synthesized_mixtures(toy):
    plain, bussed = synthesized(toy), synthesized(toy, augment=AugmentConfig(p_bus_compress=1.0))
    for index in range(4):
        a, b = plain[index], bussed[index]
        np.testing.assert_allclose(b["mixture"], b["vocals"] + b["accompaniment"], atol=1e-6)
        assert not np.allclose(a["accompaniment"], b["accompaniment"], atol=1e-4)


def test_saturation_adds_harmonics_and_keeps_rms():
    rng = np.random.default_rng(0)
    t = np.arange(RATE) / RATE
    tone = (0.5 * np.sin(2 * np.pi * 440 * t))[None].astype(np.float32)
    out = augment.saturate(tone, rng, drive_db=(12.0, 12.0))
    assert augment.rms(out) == pytest.approx(augment.rms(tone), rel=1e-3)
    spectrum = np.abs(np.fft.rfft(out[0]))
    # tanh is odd: a third harmonic appears (1 Hz bins, 1 s of audio).
    assert spectrum[1320] > 0.05 * spectrum[440]
    assert np.abs(np.fft.rfft(tone[0]))[1320] < 1e-3 * spectrum[440]
    silent = np.zeros_like(tone)
    assert np.array_equal(augment.saturate(silent, rng), silent)


def test_double_adds_a_late_copy_on_the_other_side():
    rng = np.random.default_rng(1)
    audio = np.zeros((2, RATE), np.float32)
    audio[0, 1000] = 1.0  # a click on the left only
    out = augment.double(audio, rng, RATE)
    assert out.shape == audio.shape
    assert out[0, 1000] == pytest.approx(1.0, abs=0.05)
    late = np.abs(out[1])
    echo = int(np.argmax(late))
    assert 1000 + 0.009 * RATE <= echo <= 1000 + 0.041 * RATE
    assert 0.2 < late[echo] < 0.8


def _changed_examples(augmented, plain, stem: str, count: int = 6) -> int:
    """How many of the first `count` examples have another `stem` than in `plain`; every
    example's stems must still sum to its mixture."""
    changed = 0
    for index in range(count):
        example = augmented[index]
        np.testing.assert_allclose(
            example["mixture"], example["vocals"] + example["accompaniment"], atol=1e-6
        )
        changed += not np.allclose(example[stem], plain[index][stem], atol=1e-4)
    return changed


def test_saturation_adds_harmonics_and_keeps_the_level():
    t = np.arange(RATE) / RATE
    tone = (0.3 * np.sin(2 * np.pi * 200 * t))[None].astype(np.float32)
    driven = augment.saturate(tone, np.random.default_rng(0), (12.0, 12.0))
    spectrum = np.abs(np.fft.rfft(driven[0]))
    assert spectrum[600] > 0.1 * spectrum[200]  # a strong third harmonic (tanh is odd)
    assert augment.rms(driven) == pytest.approx(augment.rms(tone), rel=1e-4)


def test_mono_mixtures_have_identical_channels_and_keep_the_sum(toy):
    plain = synthesized(toy)
    mono = synthesized(toy, augment=AugmentConfig(p_mono=1.0))
    for index in range(4):
        example = mono[index]
        for stem in ("mixture", "vocals", "accompaniment"):
            np.testing.assert_array_equal(example[stem][0], example[stem][1])
        np.testing.assert_allclose(
            example["mixture"], example["vocals"] + example["accompaniment"], atol=1e-6
        )
        assert not np.allclose(plain[index]["mixture"][0], plain[index]["mixture"][1])
    # Off by default, and turning it off draws no random numbers: old configs give old examples.
    again = synthesized(toy, augment=AugmentConfig(p_mono=0.0))
    np.testing.assert_array_equal(again[3]["mixture"], plain[3]["mixture"])


def test_paired_folder_excerpts(tmp_path):
    from vocalsep.audio.datasets import FolderConfig
    from vocalsep.audio.pairs import PairedExcerpts, full_tracks

    for index in range(3):
        folder = tmp_path / "dev" / f"track{index}"
        write_wav(folder / "vocals.wav", synth(RATE, 2 * RATE, 1, seed=index), RATE)
        write_wav(folder / "accompaniment.wav", synth(RATE, 2 * RATE, 2, seed=9 + index), RATE)
    config = FolderConfig(root=str(tmp_path / "dev"), validation_tracks=("track2",))
    train = PairedExcerpts(config, ExcerptSpec("train", RATE, 2, 0.5, seed=0))
    validation = PairedExcerpts(config, ExcerptSpec("validation", RATE, 2, 0.5, seed=0))
    assert train.names == ["track0", "track1"] and validation.names == ["track2"]
    example = train[3]
    assert example["vocals"].shape == (2, RATE // 2)  # mono vocals copied to both channels
    np.testing.assert_allclose(example["mixture"], example["vocals"] + example["accompaniment"])
    whole = full_tracks(tmp_path / "dev", sample_rate=RATE, channels=1, max_seconds=1.0)
    assert len(whole) == 3 and whole[0]["mixture"].shape == (1, RATE)


def test_dataset_kinds_are_a_registry_and_the_validation_folder_a_typed_field(tmp_path, toy):
    from vocalsep.audio.datasets import DATASETS, DataConfig
    from vocalsep.audio.training import SeparationTask, SeparationTaskConfig

    assert DATASETS.names() == ["folder", "musdb", "synthesized"]
    with pytest.raises(ConfigError, match="data.kind must be one of folder, musdb, synthesized"):
        DataConfig(kind="nope")
    for index in range(2):
        folder = tmp_path / "dev" / f"track{index}"
        write_wav(folder / "vocals.wav", synth(RATE, 2 * RATE, 1, seed=index), RATE)
        write_wav(folder / "accompaniment.wav", synth(RATE, 2 * RATE, 1, seed=5 + index), RATE)
    # The string form of earlier run configs reads as the typed field.
    old = DataConfig.from_dict({"validation": f"folder:{tmp_path / 'dev'}"})
    assert old.validation_folder == str(tmp_path / "dev")
    with pytest.raises(ConfigError, match="validation_folder"):
        DataConfig.from_dict({"validation": "dev"})
    task = SeparationTask(
        SeparationTaskConfig.from_dict(
            {
                "model": {"sample_rate": RATE, "stft": {"n_fft": 256, "hop_length": 64}},
                "data": {
                    "validation_folder": str(tmp_path / "dev"),
                    "validation_seconds": 1.0,
                    "synthesized": {
                        "vocals": [{"path": str(toy / "vocals")}],
                        "accompaniment": [{"path": str(toy / "accompaniment")}],
                    },
                },
            }
        )
    )
    examples = task.validation_examples()
    assert len(examples) == 2 and examples[0]["mixture"].shape == (1, RATE)


def test_musdb_through_the_musdb_package(tmp_path):
    pytest.importorskip("musdb")
    from vocalsep.audio.datasets import MusdbConfig, MusdbMixtures

    root = write_musdb_wav(tmp_path / "musdb", MUSDB_TRAIN + MUSDB_VALID)
    config = MusdbConfig(root=str(root), is_wav=True)
    train = MusdbMixtures(config, ExcerptSpec("train", 22050, 2, 0.5, seed=0))
    validation = MusdbMixtures(config, ExcerptSpec("validation", 22050, 2, 0.5, seed=0))
    assert sorted(train.names) == sorted(MUSDB_TRAIN) and validation.names == MUSDB_VALID
    example = train[0]
    assert example["vocals"].shape == (2, 11025)
    np.testing.assert_allclose(example["mixture"], example["vocals"] + example["accompaniment"])
    np.testing.assert_array_equal(validation[0]["mixture"], validation[0]["mixture"])
