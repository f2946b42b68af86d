"""Reading and resampling audio files.

Arrays are float32 numpy `(channels, samples)` everywhere. Files are read block by block so
memory does not grow with their length: with libsndfile (wav, flac, ogg, mp3, aiff, ...) when it
can open the file, otherwise through an ffmpeg pipe (m4a, mp4, aac, ...) when ffmpeg is
installed; `decode` also falls back on ffmpeg when libsndfile fails partway. Writing is in
`writer`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO, TypeVar

import numpy as np
import soundfile
import soxr

from ..core.errors import VocalsepWarning
from .errors import AudioDecodeError, InvalidAudioError

StrPath = str | os.PathLike
T = TypeVar("T")

AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    f".{name}"
    for name in "wav flac ogg oga opus mp3 m4a mp4 aac aif aiff au caf wma webm mka mkv w64".split()
)

INSTALL_FFMPEG = "install ffmpeg (apt-get install ffmpeg / brew install ffmpeg)"
SOUNDFILE_ERRORS = (soundfile.SoundFileError, RuntimeError, TypeError, ValueError)
_BYTES_PER_SAMPLE = dict(
    PCM_S8=1, PCM_U8=1, PCM_16=2, PCM_24=3, PCM_32=4, FLOAT=4, DOUBLE=8, ULAW=1, ALAW=1
)
# When a PCM data chunk is cut short libsndfile quietly reports only the frames present, but
# its log keeps the size the header promised: "data : <promised> (should be <present>)"
# (an AIFF SSND chunk starts with 8 bytes of offset and block size).
_SHORT_CHUNK = re.compile(r"^\s*(data|SSND|Data Size)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.M)
_PLACEHOLDER_SIZE = 0x7FFFF000  # streaming writers leave ~2**31 or 2**32 - 1 in their headers
_FFMPEG_CONTEXT = re.compile(r"^\[[\w.-]+ @ 0x[0-9a-fA-F]+\]\s*")  # "[mp3 @ 0x55ab97b81500] "
_UNKNOWN_FRAMES = 2**63 - 1  # libsndfile's SF_COUNT_MAX
_PROBE_TIMEOUT_S = 60
_LOAD_BLOCK = 1 << 18
_PIECE = 1 << 13  # frames per libsndfile read (smaller reads cost time: 1024 adds 0.5 s/3 min)
_STEP = 64  # frames per read when counting how far a failing decoder gets


class PartialDecodeError(AudioDecodeError):
    """A decoder failed partway through a file, after `frames` frames."""

    def __init__(self, path: Path, decoder: str, frames: int, reason: str) -> None:
        self.path, self.decoder, self.frames, self.reason = path, decoder, frames, reason
        super().__init__(
            f"cannot decode {path} after {frames} frames ({decoder}: {reason}); "
            "re-export or re-download it"
        )


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds. `frames` is None when unknown (ffmpeg), and an estimate for MP3s
    without a Xing header."""

    sample_rate: int
    channels: int
    frames: int | None
    backend: str  # "soundfile" | "ffmpeg"


class AudioReader:
    """An open audio file, read as a stream of blocks; create it with `open_audio`."""

    def __init__(self, path: Path, info: AudioInfo, source: soundfile.SoundFile | str) -> None:
        """`source`: an open SoundFile, or the ffmpeg executable to decode `path` with."""
        self.path = path
        self.info = info
        self._file = source if isinstance(source, soundfile.SoundFile) else None
        self._ffmpeg = source if isinstance(source, str) else None
        self._processes: set[subprocess.Popen] = set()
        self._closed = False
        # Why ffmpeg decodes a file that libsndfile opened (see `decode`), and how many frames
        # libsndfile's header gave (an estimate for MP3s), for the warning.
        self.fallback_note: str | None = None
        self.expected_frames: int | None = None
        # What libmpg123 writes to descriptor 2 while decoding (damaged frames), kept out of
        # the terminal and summed up in one warning at the end of the stream.
        self._decoder_log: IO[bytes] | None = None

    def blocks(self, block_frames: int) -> Iterator[np.ndarray]:
        """Yield the file from its start as float32 `(channels, n)` blocks with
        `n == block_frames` except for the last. Decoding errors raise `AudioDecodeError`."""
        if block_frames < 1:
            raise ValueError(f"block_frames must be positive, got {block_frames}")
        if self._closed:
            raise ValueError(f"reader of {self.path} is closed")
        if self._file is not None:
            return self._soundfile_blocks(int(block_frames))
        return self._ffmpeg_blocks(int(block_frames))

    def _soundfile_blocks(self, block_frames: int) -> Iterator[np.ndarray]:
        file, read = self._file, 0
        while True:
            if self._closed:
                raise ValueError(f"reader of {self.path} is closed")
            if read == 0 and file.tell() != 0:
                file.seek(0)
            data = self._soundfile_read(block_frames, read)
            read += len(data)
            if len(data):
                yield np.ascontiguousarray(data.T)
            if len(data) < block_frames:
                break
        # MP3 frame counts are estimates when there is no Xing header, so a short read is normal;
        # Ogg counts come from the last page's granule position, which encoders may leave a few
        # milliseconds beyond the decodable end (seen in the wild): tolerate up to 50 ms there.
        if self.info.frames is not None and read < self.info.frames and file.format != "MP3":
            slack = self.info.sample_rate // 20 if file.format == "OGG" else 0
            if self.info.frames - read > slack:
                raise _truncated(self.path, self.info.frames, read)
        self._warn_if_damaged()

    def _soundfile_read(self, frames: int, before: int) -> np.ndarray:
        """Up to `frames` frames `(n, channels)`, read in pieces of `_PIECE` frames so that a
        decoding error can say how far the decoder got (`before` frames were read earlier)."""
        pieces, got = [], 0
        while got < frames:
            want = min(_PIECE, frames - got)
            try:
                with self._decoder_messages():
                    piece = self._file.read(want, dtype="float32", always_2d=True)
            except (soundfile.SoundFileError, RuntimeError) as error:
                reason = soundfile_reason(error) or "decoder error"
                frames_read = before + got + self._decodable(before + got, want)
                raise PartialDecodeError(self.path, "libsndfile", frames_read, reason) from None
            pieces.append(piece)
            got += len(piece)
            if len(piece) < want:
                break
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def _decodable(self, start: int, limit: int) -> int:
        """How many frames from `start` (up to `limit`) decode before the error that a read of
        them met: read again in small steps, so that the error names the frame count exactly
        (to `_STEP` frames). 0 when the decoder cannot seek back."""
        count = 0
        try:
            with self._decoder_messages():
                self._file.seek(start)
                while count < limit:
                    piece = self._file.read(min(_STEP, limit - count), dtype="float32")
                    count += len(piece)
                    if not len(piece):
                        break
        except (soundfile.SoundFileError, RuntimeError):
            pass
        return count

    def _decoder_messages(self) -> contextlib.AbstractContextManager:
        """Around an MP3 read: descriptor 2 goes to the decoder log. Other formats: nothing."""
        if self._file is None or self._file.format != "MP3":
            return contextlib.nullcontext()
        if self._decoder_log is None:
            self._decoder_log = tempfile.TemporaryFile()
        return _c_stderr_redirected(self._decoder_log.fileno())

    def _warn_if_damaged(self) -> None:
        log = self._decoder_log
        if log is None or os.fstat(log.fileno()).st_size == 0:
            return
        log.seek(0)
        lines = [line for line in log.read().decode("utf-8", "replace").splitlines() if line]
        log.seek(0)
        log.truncate()
        warnings.warn(
            f"{self.path}: the MP3 decoder met damaged data and skipped over it "
            f"({len(lines)} decoder messages, e.g. {lines[0].strip()!r}); the stems may have "
            "gaps or clicks there: re-export or re-download it",
            VocalsepWarning,
            stacklevel=2,
        )

    def _ffmpeg_blocks(self, block_frames: int) -> Iterator[np.ndarray]:
        channels, frame_bytes = self.info.channels, 4 * self.info.channels
        # -ac/-ar pin the output to what ffprobe reported, even if the stream changes midway.
        command = [self._ffmpeg, "-nostdin", "-v", "error", "-i", os.path.abspath(self.path)]
        command += f"-map 0:a:0 -ac {channels} -ar {self.info.sample_rate} -f f32le".split()
        command += ["-acodec", "pcm_f32le", "-"]
        # ffmpeg's stderr goes to a file: an unread pipe could fill up and stall ffmpeg.
        with tempfile.TemporaryFile() as stderr:
            try:
                process = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr
                )
            except OSError as error:
                raise AudioDecodeError(
                    f"cannot run {self._ffmpeg} to decode {self.path} ({error}); reinstall ffmpeg"
                ) from None
            self._processes.add(process)
            read = 0
            try:
                while True:
                    data = process.stdout.read(block_frames * frame_bytes)
                    n = len(data) // frame_bytes
                    if n:
                        read += n
                        yield np.frombuffer(data, "<f4", n * channels).reshape(n, channels).T.copy()
                    if len(data) < block_frames * frame_bytes:
                        break
                stderr.seek(0)
                messages = stderr.read()
                if process.wait() != 0:
                    reason = _first_line(messages, os.path.abspath(self.path))
                    raise PartialDecodeError(self.path, "ffmpeg", read, reason)
                self._warn_if_ffmpeg_complained(messages, read)
            finally:
                self._processes.discard(process)
                _stop(process)

    def _warn_if_ffmpeg_complained(self, messages: bytes, frames: int) -> None:
        """ffmpeg decoded the file (`frames` frames) but maybe skipped damaged data on the way:
        one warning, which also says why ffmpeg decoded it when libsndfile failed first."""
        lines = [line for line in messages.decode("utf-8", "replace").splitlines() if line]
        parts = []
        if self.fallback_note:
            expected = (
                f" of the {self.expected_frames} in its header" if self.expected_frames else ""
            )
            parts.append(f"{self.fallback_note}; ffmpeg decoded {frames} frames{expected}")
        if lines:
            first = _first_line(lines[0].encode(), os.path.abspath(self.path))
            parts.append(
                f"ffmpeg met damaged data and skipped over it ({len(lines)} decoder messages, "
                f"e.g. {first!r}); the stems may have gaps or clicks there: re-export or "
                "re-download it"
            )
        if parts:
            warnings.warn(f"{self.path}: {'; '.join(parts)}", VocalsepWarning, stacklevel=3)

    def close(self) -> None:
        """Release the file and stop any ffmpeg still decoding it."""
        self._closed = True
        for process in list(self._processes):
            _stop(process)
        if self._file is not None:
            self._file.close()
        if self._decoder_log is not None:
            self._decoder_log.close()

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextlib.contextmanager
def _c_stderr_silenced() -> Iterator[None]:
    """Send what C libraries write to file descriptor 2 to /dev/null for the duration.

    libsndfile's MP3 decoder (libmpg123) writes its own notes there when it probes a file that
    is not audio; the error we raise says what went wrong in one line instead."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:  # no /dev/null: leave descriptor 2 alone
        null = None
    if null is None:
        yield
        return
    try:
        with _c_stderr_redirected(null):
            yield
    finally:
        os.close(null)


@contextlib.contextmanager
def _c_stderr_redirected(target: int) -> Iterator[None]:
    """Point file descriptor 2 at the open descriptor `target` for the duration (what C code
    writes there goes to it), then put the old descriptor 2 back."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no usable descriptor 2: nothing to redirect
        saved = None
    if saved is None:
        yield
        return
    try:
        os.dup2(target, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def open_audio(path: StrPath) -> AudioReader:
    """Open `path` for streaming with libsndfile, or ffmpeg when libsndfile cannot read it.

    Raises `AudioDecodeError` (one line, with the fix) when the file cannot be read."""
    path = Path(path)
    _check_readable(path)
    try:
        with _c_stderr_silenced():  # libmpg123 prints "Note: ..." lines while probing junk
            file = soundfile.SoundFile(os.fspath(path))
    except SOUNDFILE_ERRORS as error:
        return _open_with_ffmpeg(path, soundfile_reason(error))
    frames = None if file.frames >= _UNKNOWN_FRAMES else file.frames
    # A cut-off PCM file: libsndfile only counts what is there, its log remembers the header.
    short = _SHORT_CHUNK.search(file.extra_info)
    sample_bytes = _BYTES_PER_SAMPLE.get(file.subtype)
    if frames is not None and short and sample_bytes:
        chunk, size, present = short[1], int(short[2]), int(short[3])
        promised = (size - 8 * (chunk == "SSND")) // (sample_bytes * file.channels)
        if present < size < _PLACEHOLDER_SIZE and promised > frames:
            file.close()
            raise _truncated(path, promised, frames)
    info = AudioInfo(file.samplerate, file.channels, frames, "soundfile")
    return AudioReader(path, info, file)


def _open_with_ffmpeg(path: Path, soundfile_reason: str) -> AudioReader:
    ffmpeg, ffprobe = shutil.which("ffmpeg"), shutil.which("ffprobe")
    if not ffmpeg or not ffprobe:
        raise AudioDecodeError(
            f"cannot read {path}: libsndfile reads wav, flac, ogg, mp3 and aiff but not this file"
            f" ({soundfile_reason}); {INSTALL_FFMPEG} to read m4a/mp4/aac and other containers"
        )
    target = os.path.abspath(path)  # never mistaken for an option, "-" or a URL by ffprobe
    command = [ffprobe, "-v", "error", "-select_streams", "a:0", "-of", "json"]
    command += ["-show_entries", "stream=sample_rate,channels", target]
    try:
        result = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, timeout=_PROBE_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise AudioDecodeError(f"cannot decode {path}: ffprobe failed ({error})") from None
    reason = _first_line(result.stderr, target) if result.returncode else "no audio stream"
    if not result.returncode:
        try:
            stream = json.loads(result.stdout)["streams"][0]
            sample_rate, channels = int(stream["sample_rate"]), int(stream["channels"])
            if sample_rate > 0 and channels > 0:
                info = AudioInfo(sample_rate, channels, None, "ffmpeg")
                return AudioReader(path, info, ffmpeg)
        except (ValueError, KeyError, IndexError, TypeError):
            pass
    raise AudioDecodeError(f"cannot decode {path}: not a readable audio file ({reason})")


def decode(path: StrPath, work: Callable[[AudioReader], T]) -> T:
    """`work(reader)` on `open_audio(path)`, with ffmpeg as the fallback decoder.

    When libsndfile fails partway through the file (a damaged MP3 stretch, say) and ffmpeg is
    installed, `work` runs again from the start on an ffmpeg reader, so `work` must be
    restartable (write its outputs atomically, as `AudioWriter` does). One warning says so; the
    error, when both decoders fail, says how far each got."""
    path = Path(path)
    with open_audio(path) as reader:
        try:
            return work(reader)
        except PartialDecodeError as error:
            if reader.info.backend != "soundfile":
                raise
            first, expected = error, reader.info.frames
    if not shutil.which("ffmpeg") or not shutil.which("ffprobe"):
        raise AudioDecodeError(
            f"cannot decode {path} after {first.frames} frames ({first.reason}); "
            f"{INSTALL_FFMPEG}, which may decode the rest, or re-export or re-download it"
        )
    try:
        fallback = _open_with_ffmpeg(path, first.reason)
    except AudioDecodeError:
        raise AudioDecodeError(
            f"cannot decode {path} after {first.frames} frames ({first.reason}), and ffmpeg "
            "cannot read it either; re-export or re-download it"
        ) from None
    try:
        with fallback as reader:
            reader.fallback_note = (
                f"libsndfile stopped after {first.frames} frames ({first.reason}), so ffmpeg "
                "decoded it again from the start"
            )
            reader.expected_frames = expected
            return work(reader)
    except PartialDecodeError as second:
        raise AudioDecodeError(
            f"cannot decode {path}: libsndfile stopped after {first.frames} frames "
            f"({first.reason}), ffmpeg after {second.frames} ({second.reason}); re-export or "
            "re-download it"
        ) from None


def load_audio(path: StrPath) -> tuple[np.ndarray, int]:
    """Read a whole file: float32 `(channels, samples)` and its sample rate (ffmpeg decodes
    what libsndfile cannot, see `decode`)."""
    return decode(path, _load)


def _load(reader: AudioReader) -> tuple[np.ndarray, int]:
    blocks = list(reader.blocks(_LOAD_BLOCK))
    channels, sample_rate = reader.info.channels, reader.info.sample_rate
    if not blocks:
        return np.zeros((channels, 0), np.float32), sample_rate
    return np.concatenate(blocks, axis=1), sample_rate


def check_audio(block: np.ndarray, path: StrPath) -> None:
    """Raise `InvalidAudioError` if `block` (any shape) holds NaN or infinite samples."""
    if not np.isfinite(block).all():
        raise InvalidAudioError(
            f"{path} contains NaN or infinite samples; re-export it or clean it first"
        )


def resample(audio: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample `(channels, samples)` (or `(samples,)`) with soxr "HQ" to float32 of exactly
    `round(samples * target_sr / orig_sr)` samples; a float32 copy when the rates agree."""
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} and {target_sr}")
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim not in (1, 2):
        raise ValueError(f"audio must be (channels, samples) or (samples,), got {audio.shape}")
    if orig_sr == target_sr:
        return audio.copy()
    length = round(Fraction(audio.shape[-1]) * Fraction(target_sr) / Fraction(orig_sr))
    if length == 0:
        return np.zeros((*audio.shape[:-1], 0), np.float32)
    out = soxr.resample(audio.T, orig_sr, target_sr, quality="HQ").T  # soxr: (samples, channels)
    # soxr rounds halves up, Python to even, and tiny inputs may come out a little short.
    if out.shape[-1] > length:
        out = out[..., :length]
    elif out.shape[-1] < length:
        out = np.pad(out, [(0, 0)] * (out.ndim - 1) + [(0, length - out.shape[-1])])
    return np.ascontiguousarray(out, dtype=np.float32)


def _check_readable(path: Path) -> None:
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise AudioDecodeError(f"{path} is a directory, not an audio file; pass a file")
        with open(path, "rb") as handle:
            empty = not handle.read(1)
    except (FileNotFoundError, NotADirectoryError):
        raise AudioDecodeError(f"{path} does not exist; check the path") from None
    except OSError as error:
        raise AudioDecodeError(
            f"cannot read {path} ({error.strerror or error}); check its permissions"
        ) from None
    if empty:
        raise AudioDecodeError(f"{path} is empty (0 bytes); re-export or re-download it")


def _truncated(path: Path, promised: int, read: int) -> AudioDecodeError:
    return AudioDecodeError(
        f"{path} is truncated: header says {promised} frames, only {read} could be read; "
        "re-export or re-download it"
    )


def soundfile_reason(error: BaseException) -> str:
    """libsndfile's own words without soundfile's "Error opening 'path': " prefix."""
    lines = (getattr(error, "error_string", None) or str(error)).strip().splitlines()
    return lines[0].rstrip(".") if lines else ""


def _first_line(stderr: bytes, target: str) -> str:
    """ffmpeg's first error line without the input's path and the "[mp3 @ 0x55ab...] " tag
    of the component that wrote it (a memory address means nothing to the user)."""
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    line = lines[0].strip() if lines else "no error message"
    line = _FFMPEG_CONTEXT.sub("", line.removeprefix(f"{target}: "))
    return line or "no error message"


def _stop(process: subprocess.Popen) -> None:
    """Kill `process` if it is still running and reap it, so it leaves no zombie."""
    if process.poll() is None:
        process.kill()
    process.stdout.close()
    process.wait()
