"""Training examples for separation: synthesized mixtures, MUSDB18 and paired folders.

Every dataset maps an example index to a dict of float32 `(channels, samples)` arrays with the
keys "mixture", "vocals" and "accompaniment" (`mixture == vocals + accompaniment`). Example i is
a pure function of (seed, i), drawn with `numpy.random.default_rng([seed, salt, i])`, so runs,
resumes and DDP processes agree, and a validation set (a fixed seed and the held-out groups) is
identical run to run. No training-loop code lives here.

The source files and their decoded, cached audio are in `pools`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.config import Config
from ..core.errors import ConfigError
from ..core.registry import Registry
from . import augment
from .io import resample
from .pools import AudioPool, DatasetError, SourceSpec, cached_array

Example = dict[str, np.ndarray]


# -- synthesized mixtures ----------------------------------------------------------------------


@dataclass(frozen=True)
class AugmentConfig(Config):
    """Probabilities and ranges of the augmentations (0 turns one off).

    Vocals: pitch shift (uniform in +-pitch_semitones, with probability p_pitch), time stretch
    (rate in 1 +- stretch, p_stretch), random EQ (+-eq_db, p_eq), synthetic reverb (p_reverb),
    panning of mono sources within +-max_pan; "production": compression (p_compress), soft
    saturation (p_saturate) and a doubled take (p_double). Accompaniment: random EQ
    (p_eq_accompaniment) and a second layered excerpt (p_layer). Both: stereo channel swap,
    level,
    and mix-bus compression of the finished mixture (p_bus_compress: one gain curve from the
    mixture applied to both stems, so they still sum to it); a mono mixture (p_mono: both stems
    downmixed and copied to every channel, as a mono song reaches a stereo network).
    """

    p_pitch: float = 0.5
    pitch_semitones: float = 3.0
    p_stretch: float = 0.3
    stretch: float = 0.15
    p_eq: float = 0.5
    eq_db: float = 8.0
    p_reverb: float = 0.4
    max_pan: float = 0.3
    p_eq_accompaniment: float = 0.3
    p_layer: float = 0.3
    p_compress: float = 0.0
    p_saturate: float = 0.0
    p_double: float = 0.0
    p_bus_compress: float = 0.0
    p_mono: float = 0.0


@dataclass(frozen=True)
class SynthesizedConfig(Config):
    """Random mixtures of isolated vocals (and optionally speech) with accompaniment.

    vocal_level_db:   vocal-to-accompaniment RMS ratio, uniform in this range (dB).
    silent_vocals:    share of examples with no vocals at all (the model must learn silence).
    solo_vocals:      share of the other examples with no accompaniment (the vocals alone:
                      a cappella passages, where the karaoke track must stay silent).
    speech:           extra vocal material (spoken voice) and the share of examples using it.
    active_threshold: vocal excerpts quieter than this RMS are redrawn (up to 8 times), so
                      "vocals present" examples really contain singing.
    """

    vocals: tuple[SourceSpec, ...] = ()
    accompaniment: tuple[SourceSpec, ...] = ()
    speech: tuple[SourceSpec, ...] = ()
    speech_share: float = 0.0
    vocal_level_db: tuple[float, float] = (-8.0, 4.0)
    silent_vocals: float = 0.1
    solo_vocals: float = 0.0
    active_threshold: float = 0.003
    mixture_peak: tuple[float, float] = (0.3, 0.95)
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass(frozen=True)
class MusdbConfig(Config):
    """MUSDB18 through the `musdb` package (official train/validation split of the train set).

    is_wav: the decoded-wav layout (`track/{mixture,drums,bass,other,vocals}.wav`) instead of
    stem.mp4. mix_across_tracks: draw every source from its own random track (Uhlich et al.
    2017). gain: random per-source gain range; channel_swap: swap left/right per source."""

    root: str = ""
    is_wav: bool = False
    mix_across_tracks: bool = True
    gain: tuple[float, float] = (0.25, 1.25)
    channel_swap: bool = True


@dataclass(frozen=True)
class FolderConfig(Config):
    """Paired folders `root/<track>/{mixture,vocals,accompaniment}.*`; `validation_tracks`
    names the tracks held out (or `validation_share` picks them by hash)."""

    root: str = ""
    validation_tracks: tuple[str, ...] = ()
    validation_share: float = 0.0


@dataclass(frozen=True)
class DataConfig(Config):
    """kind: a name in `DATASETS` (synthesized, musdb, folder), configured by the section of
    the same name. Examples are `segment_seconds` long at the model's rate with `channels`
    channels. validation_folder: "" (validate on a held-out part of the same kind) or a folder
    of paired tracks `<track>/{mixture,vocals,accompaniment}.*` (e.g. real mixtures), cut to
    `validation_seconds` (0: whole). cache_dir: decoded-audio cache ("" = keep in RAM)."""

    kind: str = "synthesized"
    segment_seconds: float = 4.0
    channels: int = 1
    validation_examples: int = 64
    validation_seconds: float = 0.0
    validation_folder: str = ""
    cache_dir: str = ""
    synthesized: SynthesizedConfig = field(default_factory=SynthesizedConfig)
    musdb: MusdbConfig = field(default_factory=MusdbConfig)
    folder: FolderConfig = field(default_factory=FolderConfig)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataConfig:
        """As `Config.from_dict`; the string `validation = "folder:PATH"` of earlier run
        configs is read as `validation_folder = "PATH"`."""
        if isinstance(data, dict) and "validation" in data:
            data = dict(data)
            value = data.pop("validation")
            if value and not (isinstance(value, str) and value.startswith("folder:")):
                raise ConfigError(f'data.validation {value!r}: use validation_folder = "PATH"')
            if value:
                data.setdefault("validation_folder", value.removeprefix("folder:"))
        return super().from_dict(data)

    def __post_init__(self) -> None:
        if self.kind not in DATASETS:
            raise ConfigError(f"data.kind must be one of {', '.join(DATASETS)}, got {self.kind!r}")
        if self.segment_seconds <= 0 or self.channels < 1 or self.validation_examples < 1:
            raise ConfigError(
                "data: need segment_seconds > 0, channels >= 1, validation_examples >= 1"
            )


def _salted_rng(seed: int, salt: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(salt.encode()), index])


@dataclass(frozen=True)
class ExcerptSpec:
    """What every example source is asked for: the split ("train" or "validation"), the rate,
    channel count and length of the excerpts, the seed, where decoded audio is cached (None:
    in RAM) and a callback told each file as it is decoded."""

    split: str
    sample_rate: int
    channels: int
    segment_seconds: float
    seed: int
    cache_dir: Path | None = None
    progress: Callable[[str], None] | None = None

    @property
    def length(self) -> int:
        return max(1, round(self.segment_seconds * self.sample_rate))


class ExampleSource:
    """Base of the index -> example datasets: keeps the spec's fields at hand."""

    def __init__(self, spec: ExcerptSpec) -> None:
        self.spec = spec
        self.split = spec.split
        self.sample_rate = spec.sample_rate
        self.channels = spec.channels
        self.length = spec.length
        self.seed = spec.seed


class SynthesizedMixtures(ExampleSource):
    """Index -> a random mixture of an (augmented) vocal excerpt and accompaniment."""

    def __init__(self, config: SynthesizedConfig, spec: ExcerptSpec) -> None:
        super().__init__(spec)
        self.config = config
        split, sample_rate = spec.split, spec.sample_rate
        cache_dir, progress = spec.cache_dir, spec.progress
        self.vocals = AudioPool(config.vocals, split, sample_rate, cache_dir, progress)
        self.accompaniment = AudioPool(
            config.accompaniment, split, sample_rate, cache_dir, progress
        )
        self.speech = (
            AudioPool(config.speech, split, sample_rate, cache_dir, progress)
            if config.speech and config.speech_share > 0 and split == "train"
            else None  # speech is extra training material; validation measures singing only
        )

    def _vocal(self, rng: np.random.Generator) -> np.ndarray:
        config, aug = self.config, self.config.augment
        pool = self.speech if self.speech and rng.random() < config.speech_share else self.vocals
        stretch = 1.0
        if aug.p_stretch and rng.random() < aug.p_stretch:
            stretch = rng.uniform(1 - aug.stretch, 1 + aug.stretch)
        needed = int(np.ceil(self.length * stretch)) + 1
        for _ in range(8):
            vocal = pool.excerpt(rng, needed)
            if augment.rms(vocal) > config.active_threshold:
                break
        vocal = augment.time_stretch(vocal, stretch)[:, : self.length]
        if vocal.shape[-1] < self.length:
            vocal = np.pad(vocal, ((0, 0), (0, self.length - vocal.shape[-1])))
        if aug.p_pitch and rng.random() < aug.p_pitch:
            semitones = rng.uniform(-aug.pitch_semitones, aug.pitch_semitones)
            vocal = augment.pitch_shift(vocal, semitones, self.sample_rate)
        if aug.p_eq and rng.random() < aug.p_eq:
            vocal = augment.random_eq(vocal, rng, self.sample_rate, aug.eq_db)
        if aug.p_saturate and rng.random() < aug.p_saturate:
            vocal = augment.saturate(vocal, rng)
        if aug.p_compress and rng.random() < aug.p_compress:
            vocal = augment.compress(vocal, rng, self.sample_rate)
        vocal = augment.to_channels(vocal, self.channels, rng, aug.max_pan)
        if aug.p_double and rng.random() < aug.p_double:
            vocal = augment.double(vocal, rng, self.sample_rate)
        if aug.p_reverb and rng.random() < aug.p_reverb:
            vocal = augment.reverb(vocal, rng, self.sample_rate)
        return vocal

    def _accompaniment(self, rng: np.random.Generator) -> np.ndarray:
        aug = self.config.augment
        music = augment.to_channels(
            self.accompaniment.excerpt(rng, self.length), self.channels, rng, 0.6
        )
        if aug.p_layer and rng.random() < aug.p_layer:
            layer = self.accompaniment.excerpt(rng, self.length)
            layer = augment.to_channels(layer, self.channels, rng, 0.6)
            music = music + layer * (
                rng.uniform(0.3, 1.0) * augment.rms(music) / augment.rms(layer)
            )
        if aug.p_eq_accompaniment and rng.random() < aug.p_eq_accompaniment:
            music = augment.random_eq(music, rng, self.sample_rate, aug.eq_db)
        return music

    def __getitem__(self, index: int) -> Example:
        config = self.config
        rng = _salted_rng(self.seed, self.split, int(index))
        accompaniment = self._accompaniment(rng)
        if rng.random() < config.silent_vocals:
            vocals = np.zeros_like(accompaniment)
        else:
            vocals = self._vocal(rng)
            level = 10 ** (rng.uniform(*config.vocal_level_db) / 20)
            vocals = vocals * (level * augment.rms(accompaniment) / augment.rms(vocals))
            if config.solo_vocals and rng.random() < config.solo_vocals:
                accompaniment = np.zeros_like(accompaniment)
        bus = config.augment.p_bus_compress
        if bus and rng.random() < bus:
            vocals, accompaniment = augment.bus_compress(
                [vocals, accompaniment], rng, self.sample_rate
            )
        mono = config.augment.p_mono
        if mono and rng.random() < mono:
            vocals, accompaniment = (
                np.broadcast_to(stem.mean(axis=0, keepdims=True), stem.shape).copy()
                for stem in (vocals, accompaniment)
            )
        return _normalised(vocals, accompaniment, rng, config.mixture_peak)


def _normalised(
    vocals: np.ndarray, accompaniment: np.ndarray, rng: np.random.Generator, peak_range
) -> Example:
    """Scale both sources together so the mixture peaks at a random level in `peak_range`."""
    mixture = vocals + accompaniment
    peak = float(np.max(np.abs(mixture))) if mixture.size else 0.0
    scale = rng.uniform(*peak_range) / peak if peak > 1e-6 else 1.0
    vocals = (vocals * scale).astype(np.float32)
    accompaniment = (accompaniment * scale).astype(np.float32)
    return {"mixture": vocals + accompaniment, "vocals": vocals, "accompaniment": accompaniment}


# -- MUSDB18 -----------------------------------------------------------------------------------

_MUSDB_SOURCES = ("vocals", "drums", "bass", "other")


class MusdbMixtures(ExampleSource):
    """Index -> an excerpt of MUSDB18 (cross-track random mixing for training, fixed excerpts
    of the validation tracks otherwise). Sources are decoded once into the cache."""

    def __init__(self, config: MusdbConfig, spec: ExcerptSpec) -> None:
        super().__init__(spec)
        if not config.root:
            raise DatasetError("data.musdb.root is not set; point it at your MUSDB18 folder")
        from .tracks import musdb_tracks

        tracks = musdb_tracks(
            config.root, "train", "train" if spec.split == "train" else "valid", config.is_wav
        )
        self.config = config
        self.names = [track.name for track in tracks]
        self.sources: dict[str, list[np.ndarray]] = {name: [] for name in _MUSDB_SOURCES}
        for track in tracks:
            if spec.progress is not None:
                spec.progress(track.name)
            for name in _MUSDB_SOURCES:
                self.sources[name].append(self._decode(track.track, name, spec.cache_dir))

    def _decode(self, track, name: str, cache_dir: Path | None) -> np.ndarray:
        def decode() -> np.ndarray:
            audio = np.asarray(track.targets[name].audio, dtype=np.float32).T  # (channels, n)
            return resample(audio, int(track.rate), self.sample_rate).astype(np.float16)

        key = f"{track.path}|{name}|{self.sample_rate}|musdb-v1"
        return cached_array(cache_dir, key, decode)

    def __getitem__(self, index: int) -> Example:
        rng = _salted_rng(self.seed, f"musdb-{self.split}", int(index))
        training = self.split == "train"
        tracks = len(self.names)
        across = training and self.config.mix_across_tracks
        # Validation walks the tracks in order; the excerpt is fixed by the index's generator.
        track = int(rng.integers(tracks)) if training else int(index) % tracks
        start = None
        stems = {}
        for name in _MUSDB_SOURCES:
            if across:
                track, start = int(rng.integers(tracks)), None
            audio = self.sources[name][track]
            if start is None:
                start = int(rng.integers(0, max(1, audio.shape[-1] - self.length + 1)))
            piece = augment.fit_length(
                np.asarray(audio[:, start : start + self.length]), self.length
            )
            if piece.shape[0] != self.channels:
                piece = augment.to_channels(piece, self.channels, rng, 0.0)
            if training:
                piece = piece * np.float32(rng.uniform(*self.config.gain))
                if self.config.channel_swap and piece.shape[0] == 2 and rng.random() < 0.5:
                    piece = piece[::-1]
            stems[name] = np.ascontiguousarray(piece, dtype=np.float32)
        accompaniment = stems["drums"] + stems["bass"] + stems["other"]
        vocals = stems["vocals"]
        return {"mixture": vocals + accompaniment, "vocals": vocals, "accompaniment": accompaniment}


def _folder_excerpts(data: DataConfig, spec: ExcerptSpec) -> ExampleSource:
    from .pairs import PairedExcerpts  # the folder layout shares code with evaluation

    return PairedExcerpts(data.folder, spec)


# Dataset kind -> its example source, built from the data config and what to cut.
DATASETS: Registry[Callable[[DataConfig, ExcerptSpec], ExampleSource]] = Registry("dataset kind")
DATASETS.register("synthesized", lambda data, spec: SynthesizedMixtures(data.synthesized, spec))
DATASETS.register("musdb", lambda data, spec: MusdbMixtures(data.musdb, spec))
DATASETS.register("folder", _folder_excerpts)
