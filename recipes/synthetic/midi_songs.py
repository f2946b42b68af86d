"""Band-style accompaniment: random songs composed as standard MIDI, rendered with fluidsynth.

Training-data tooling for `render_band.py` next to this file (it is not part of the vocalsep
package). A song is drums, a bass line and two to four comping parts (piano, guitars, organ,
strings, pads, synths) over a chord progression in a random key, in one of five styles (pop,
rock, funk, ballad, electronic), with sections (intro, verses, choruses, a bridge, an outro)
that change groove, instruments and intensity, drum fills into each section, swing, and
humanised velocity and timing. There is deliberately no melody: no lead instrument, no choir,
voice or lead-synth program (`FORBIDDEN_PROGRAMS`), so the audio is safe to use as
"accompaniment" when training a singing-voice separator.

The MIDI file (written with mido) is a pure function of the random generator (same seed, same
bytes); rendering runs the `fluidsynth` command line with a General MIDI soundfont (Debian:
`apt-get install fluidsynth fluid-soundfont-gm`). Times inside a song are in beats (quarter
notes) from its start.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import mido
import numpy as np

from vocalsep.audio import augment
from vocalsep.audio.io import load_audio
from vocalsep.audio.writer import write_audio
from vocalsep.core.errors import VocalsepError

INSTALL_FLUIDSYNTH = "apt-get install fluidsynth fluid-soundfont-gm"
SOUNDFONT_PATHS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)
TICKS_PER_BEAT = 480
DRUM_CHANNEL = 9  # MIDI channel 10
T = TypeVar("T")

# General MIDI programs (0-based) that sound like a voice or play a lead line in the singing
# range: choir aahs, voice oohs, synth voice, pad 4 (choir), pad 7 (halo) and all 8 lead synths.
VOCAL_LIKE_PROGRAMS = frozenset({52, 53, 54, 91, 94})
LEAD_PROGRAMS = frozenset(range(80, 88))
FORBIDDEN_PROGRAMS = VOCAL_LIKE_PROGRAMS | LEAD_PROGRAMS


class BandRenderError(VocalsepError):
    """fluidsynth or the soundfont is missing, or fluidsynth failed to render a song."""


# -- the song ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Note:
    start: float  # beats from the song start
    duration: float  # beats
    pitch: int
    velocity: int


@dataclass(frozen=True)
class Part:
    """One instrument on one MIDI channel; `program` is a GM program, or a drum kit on ch. 10."""

    name: str
    channel: int
    program: int
    volume: int  # CC 7
    pan: int  # CC 10, 64 = centre
    reverb: int  # CC 91
    notes: tuple[Note, ...]


@dataclass(frozen=True)
class Song:
    style: str
    tempo: float  # beats per minute
    key: int  # pitch class of the tonic, 0 = C
    minor: bool
    sections: tuple[str, ...]
    beats: float  # length, including the final chord ringing out
    parts: tuple[Part, ...]

    @property
    def seconds(self) -> float:
        return self.beats * 60 / self.tempo


# -- the standard MIDI file -------------------------------------------------------------------

_Event = tuple[int, int, "mido.Message | mido.MetaMessage"]  # (tick, order, message)


def _track(events: list[_Event], end_tick: int) -> mido.MidiTrack:
    """`events` in time order, at one tick lower `order` first (setup, offs, ons), with delta
    times; the track ends at `end_tick` (or at its last event, if that is later)."""
    track, now = mido.MidiTrack(), 0
    for tick, _, message in sorted(events, key=lambda event: (event[0], event[1])):
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=max(0, end_tick - now)))
    return track


def _ticks(beats: float) -> int:
    return max(0, round(beats * TICKS_PER_BEAT))


def _part_events(part: Part) -> list[_Event]:
    channel = part.channel
    name = part.name.encode("ascii", "replace").decode("ascii")
    events: list[_Event] = [
        (0, 0, mido.MetaMessage("track_name", name=name)),
        (0, 0, mido.Message("control_change", channel=channel, control=7, value=part.volume)),
        (0, 0, mido.Message("control_change", channel=channel, control=10, value=part.pan)),
        (0, 0, mido.Message("control_change", channel=channel, control=91, value=part.reverb)),
        (0, 0, mido.Message("program_change", channel=channel, program=part.program)),
    ]
    # A repeated pitch must end before it sounds again, or the older note-off would cut it.
    spans: dict[int, list[tuple[int, int, int]]] = {}
    for note in part.notes:
        start = _ticks(note.start)
        end = max(start + 1, _ticks(note.start + note.duration))
        spans.setdefault(note.pitch, []).append((start, end, note.velocity))
    for pitch, notes in spans.items():
        notes.sort()
        for index, (start, end, velocity) in enumerate(notes):
            if index + 1 < len(notes):
                end = max(start + 1, min(end, notes[index + 1][0]))
            on = mido.Message("note_on", channel=channel, note=pitch, velocity=velocity)
            off = mido.Message("note_off", channel=channel, note=pitch, velocity=64)
            events += [(start, 2, on), (end, 1, off)]
    return events


def midi_file(song: Song) -> mido.MidiFile:
    """`song` as a format-1 standard MIDI file: a tempo track, then one track per part."""
    end_tick = _ticks(song.beats)
    conductor: list[_Event] = [
        (0, 0, mido.MetaMessage("set_tempo", tempo=round(60_000_000 / song.tempo))),
        # 4/4, 24 MIDI clocks per metronome click, 8 32nd notes per beat
        (0, 0, mido.MetaMessage("time_signature", numerator=4, denominator=4,
                                clocks_per_click=24, notated_32nd_notes_per_beat=8)),
    ]  # fmt: skip
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(_track(conductor, end_tick))
    midi.tracks += [_track(_part_events(part), end_tick) for part in song.parts]
    return midi


def midi_bytes(song: Song) -> bytes:
    """The bytes of `midi_file(song)` as mido writes them (with running status)."""
    buffer = io.BytesIO()
    midi_file(song).save(file=buffer)
    return buffer.getvalue()


# -- musical material -------------------------------------------------------------------------

CHORD_INTERVALS = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "sus2": (0, 2, 7),
    "sus4": (0, 5, 7),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
    "dom7": (0, 4, 7, 10),
}
# (semitones above the tonic, quality) per chord
MAJOR_PROGRESSIONS = (
    ((0, "maj"), (7, "maj"), (9, "min"), (5, "maj")),  # I V vi IV
    ((0, "maj"), (9, "min"), (5, "maj"), (7, "maj")),  # I vi IV V
    ((9, "min"), (5, "maj"), (0, "maj"), (7, "maj")),  # vi IV I V
    ((0, "maj"), (5, "maj"), (7, "maj"), (5, "maj")),  # I IV V IV
    ((0, "maj"), (10, "maj"), (5, "maj"), (0, "maj")),  # I bVII IV I
    ((2, "min7"), (7, "dom7"), (0, "maj7"), (9, "min7")),  # ii V I vi
    ((0, "maj"), (4, "min"), (5, "maj"), (7, "maj")),  # I iii IV V
    ((5, "maj"), (0, "maj"), (7, "maj"), (9, "min")),  # IV I V vi
    ((0, "maj"), (5, "maj")),  # I IV
)
MINOR_PROGRESSIONS = (
    ((0, "min"), (8, "maj"), (3, "maj"), (10, "maj")),  # i VI III VII
    ((0, "min"), (5, "min"), (7, "min"), (0, "min")),  # i iv v i
    ((0, "min"), (10, "maj"), (8, "maj"), (10, "maj")),  # i VII VI VII
    ((0, "min"), (5, "min"), (10, "maj"), (3, "maj")),  # i iv VII III
    ((0, "min"), (8, "maj"), (5, "min"), (7, "maj")),  # i VI iv V
    ((0, "min7"), (5, "min7")),  # i7 iv7
    ((0, "min"), (3, "maj"), (10, "maj"), (5, "min")),  # i III VII iv
)

# Drum grooves on a 16-step bar. kick/snare: x hit, g ghost; hats: x closed, o open.
GROOVES = {
    "rock": ("x.......x.x.....", "....x.......x...", "x.x.x.x.x.x.x.x."),
    "rock_drive": ("x.x.....x.x.....", "....x.......x...", "xxxxxxxxxxxxxxxx"),
    "pop": ("x.....x.x.......", "....x.......x...", "x.x.x.x.x.x.x.xo"),
    "halftime": ("x......x..x.....", "........x.......", "x.x.x.x.x.x.x.x."),
    "funk": ("x..x..x...x..x..", "....x..g.g..x..g", "xxxxxxoxxxxxxxox"),
    "funk_ghost": ("x.x...x..x......", "..g.x.g..g.gx.g.", "xxxxxxxxxxxxxxxx"),
    "ballad": ("x.........x.....", "........x.......", "x.x.x.x.x.x.x.x."),
    "four_floor": ("x...x...x...x...", "....x.......x...", "x.o.x.o.x.o.x.o."),
    "breakbeat": ("x.x.......x.....", "....x..g.g..x...", "x.x.x.x.x.x.x.x."),
    "shuffle": ("x.....x.x.......", "....x.......x...", "x.x.x.x.x.x.x.x."),
}
KICK, SNARE, SIDE_STICK, CLAP, CLOSED_HAT, PEDAL_HAT, OPEN_HAT = 36, 38, 37, 39, 42, 44, 46
CRASHES, RIDE, TAMBOURINE = (49, 57), 51, 54
TOMS = (50, 48, 47, 45, 43, 41)  # high to low

# Bass: one character per 16th: R root, 5 fifth, 8 octave, a approach to the next chord,
# x dead note, - hold, . rest.
BASS_PATTERNS = {
    "eighths": ("R-R-R-R-R-R-R-R-", "R-R-R-R-R-R-5-a-"),
    "root_fifth": ("R-----R-5-----a-", "R---R---5---8---", "R-----R---R-5-a-"),
    "whole": ("R---------------", "R-------5-------", "R-----------5-a-"),
    "syncopated": ("R--R--R-R-----R-", "R-.R-.R---5-8-a-"),
    "funk": ("R-.x8.R.R-5.x8a.", "R..RR.8.R-.x5-8-", "R-.R.x8-.R5.x.a."),
    "offbeat": ("..R-..R-..R-..R-", "R-R-..R-..R-..8-"),
    "octaves": ("R-8-R-8-R-8-R-8-", "R8R8R8R8R8R8R8R8"),
}
# Comping: X accented hit, x hit, u up-strum, - hold, . rest.
COMP_PATTERNS = {
    "block": ("X---x---X---x---", "X-x-x-x-X-x-x-x-", "X--x--x-X--x--x-", "X-------x-----x-"),
    "sustain": ("X---------------",),
    "strum": ("X-x-.ux-X-x-.ux-", "X--uX-xuX--uX-xu", "X-x-x-x-X-x-x-x-", "X---X-uxX---X-ux"),
    "power": ("X-x-x-x-X-x-x-x-", "X-------X-------", "XxxxXxxxXxxxXxxx", "X--x--x-X--x--x-"),
    "funk": ("x.xXx.x.x.xXx.xx", "X.x..xx.X.x..xx.", ".xX.x.xX.xX.x.xX"),
    "arpeggio": ("x-x-x-x-x-x-x-x-", "xxxxxxxxxxxxxxxx", "x--x--x-x--x--x-"),
    "offbeat": ("..x...x...x...x.", "..X...X...X..xX."),
    "stab": ("X.....x...x.....", "..X..x....X..x..", "X..X..X...X.X..."),
}
PIANOS = (0, 1, 2, 4, 5)
ORGANS = (16, 17, 18)
CLEAN_GUITARS = (24, 25, 26, 27)
DRIVEN_GUITARS = (29, 30)
STRINGS = (48, 49, 50)
PADS = (88, 89, 90, 92, 95)


@dataclass(frozen=True)
class Style:
    """What a style may use; every song draws its own tempo, groove and instruments from it."""

    tempo: tuple[float, float]
    swing_chance: float
    grooves: tuple[str, ...]
    drum_kits: tuple[int, ...]  # GM drum kits (bank 128) available in FluidR3_GM
    bass_programs: tuple[int, ...]
    bass_patterns: tuple[str, ...]
    comping: tuple[tuple[str, tuple[int, ...]], ...]  # (COMP_PATTERNS key, programs)
    parts: tuple[int, int]  # fewest and most comping parts


STYLES = {
    "pop": Style(
        (85, 128), 0.1, ("pop", "rock", "halftime"), (0, 8), (33, 34, 38),
        ("eighths", "root_fifth", "syncopated"),
        (("block", PIANOS), ("strum", (24, 25, 27)), ("sustain", STRINGS + PADS),
         ("arpeggio", PIANOS + (27,)), ("offbeat", PIANOS)),
        (2, 4),
    ),
    "rock": Style(
        (95, 160), 0.1, ("rock", "rock_drive", "halftime", "shuffle"), (0, 8, 16), (33, 34),
        ("eighths", "root_fifth"),
        (("power", DRIVEN_GUITARS), ("strum", (25, 27, 29)), ("sustain", ORGANS),
         ("block", (0, 1))),
        (2, 3),
    ),
    "funk": Style(
        (88, 120), 0.5, ("funk", "funk_ghost", "breakbeat"), (0, 8, 32), (33, 36, 37, 38),
        ("funk", "syncopated"),
        (("funk", (27, 28)), ("stab", (61, 62)), ("block", (4, 5, 7)), ("sustain", ORGANS)),
        (2, 4),
    ),
    "ballad": Style(
        (70, 95), 0.15, ("ballad", "halftime"), (0, 32, 40), (32, 33, 35),
        ("whole", "root_fifth"),
        (("arpeggio", PIANOS + (24, 25)), ("sustain", STRINGS + PADS), ("block", PIANOS),
         ("strum", (24, 25))),
        (2, 3),
    ),
    "electronic": Style(
        (100, 135), 0.15, ("four_floor", "breakbeat"), (24, 25), (38, 39),
        ("offbeat", "eighths", "octaves", "syncopated"),
        (("stab", (90, 62, 63)), ("sustain", PADS + (50,)), ("arpeggio", (90, 4)),
         ("offbeat", (0, 4, 90))),
        (2, 4),
    ),
}  # fmt: skip
SECTION_BARS = {"intro": 4, "verse": 8, "chorus": 8, "bridge": 8, "breakdown": 4, "outro": 4}
INTENSITY = {"intro": 0, "verse": 1, "chorus": 2, "bridge": 1, "breakdown": 0, "outro": 1}


@dataclass(frozen=True)
class _Chord:
    start: float  # beats
    end: float
    root: int  # pitch class
    intervals: tuple[int, ...]


@dataclass(frozen=True)
class _Section:
    name: str
    start: float  # beats
    bars: int
    intensity: int
    chords: tuple[_Chord, ...]
    groove: str
    active: frozenset[str]  # names of the parts that play


class _Humaniser:
    """Swing, timing jitter (in milliseconds) and velocity spread shared by the whole song."""

    def __init__(self, rng: np.random.Generator, tempo: float, swing: float, unit: float):
        self.rng, self.swing, self.unit = rng, swing, unit
        self.beats_per_ms = tempo / 60_000
        self.jitter_ms = rng.uniform(2, 10)
        self.spread = rng.uniform(4, 10)

    def time(self, beat: float, jitter: float = 1.0) -> float:
        offbeat = abs(beat % (2 * self.unit) - self.unit) < 1e-6
        beat += self.swing * self.unit * offbeat
        beat += self.rng.normal(0, self.jitter_ms * jitter) * self.beats_per_ms
        return max(0.0, beat)

    def velocity(self, velocity: float) -> int:
        return int(np.clip(round(velocity + self.rng.normal(0, self.spread)), 1, 127))


def _choice(rng: np.random.Generator, options: Sequence[T]) -> T:
    return options[int(rng.integers(len(options)))]


def _events(pattern: str) -> list[tuple[int, int, str]]:
    """(step, length in steps, symbol) of every hit of a 16-step pattern; '-' extends."""
    hits = []
    for step, symbol in enumerate(pattern):
        if symbol not in "-.":
            length = 1
            while step + length < len(pattern) and pattern[step + length] == "-":
                length += 1
            hits.append((step, length, symbol))
    return hits


def _chord_at(section: _Section, beat: float) -> tuple[_Chord, _Chord]:
    """The chord sounding at `beat` and the one after it (the section's first at the end)."""
    chords = section.chords
    for index, chord in enumerate(chords):
        if chord.start <= beat + 1e-6 < chord.end:
            return chord, chords[(index + 1) % len(chords)]
    return chords[-1], chords[0]


def _voicing(chord: _Chord, low: int, previous: Sequence[int] | None, size: int) -> list[int]:
    """`size` chord tones from `low` up, the inversion closest to `previous`."""
    best, best_cost = [], None
    for inversion in range(len(chord.intervals)):
        order = chord.intervals[inversion:] + chord.intervals[:inversion]
        notes, pitch = [], low - 1
        for index in range(size):
            pitch_class = (chord.root + order[index % len(order)]) % 12
            pitch += 1 + (pitch_class - pitch - 1) % 12
            notes.append(pitch)
        target = previous if previous else [low + 7] * size
        cost = abs(np.mean(notes) - np.mean(target))
        if best_cost is None or cost < best_cost:
            best, best_cost = notes, cost
    return best


def _bass_root(root: int) -> int:
    return 28 + (root - 28) % 12  # E1..D#2


# -- composing --------------------------------------------------------------------------------


def _plan_sections(rng: np.random.Generator, bars_wanted: int) -> list[tuple[str, int]]:
    """(name, bars) of every section, `bars_wanted - 1` to `bars_wanted` bars in all."""
    if bars_wanted < 12:
        return [("verse", max(1, bars_wanted))]
    names = ["intro"] if rng.random() < 0.8 else []
    total, verses, bridged = sum(SECTION_BARS[name] for name in names) + 4, 0, False
    while True:
        if verses >= 2 and not bridged and rng.random() < 0.7:
            block = [_choice(rng, ("bridge", "breakdown")), "chorus"]
            bridged = True
        else:
            block = ["verse", "chorus"] if rng.random() < 0.8 else ["verse", "verse", "chorus"]
            verses += 1
        bars = sum(SECTION_BARS[name] for name in block)
        if total + bars > bars_wanted:
            break
        names += block
        total += bars
    if total + 8 <= bars_wanted:
        names.append("verse" if names and names[-1] == "chorus" else "chorus")
        total += 8
    sections = [[name, SECTION_BARS[name]] for name in names + ["outro"]]
    # Fill the rest (under 8 bars) in 2-bar steps: a longer outro, then longer last sections.
    spare, index = bars_wanted - total, len(sections) - 1
    while spare >= 2 and index >= 0:
        grow = min(spare // 2 * 2, 4)
        sections[index][1] += grow
        spare, index = spare - grow, index - 1
    return [(name, bars) for name, bars in sections]


def _progression(rng: np.random.Generator, minor: bool, style: str) -> tuple:
    progression = _choice(rng, MINOR_PROGRESSIONS if minor else MAJOR_PROGRESSIONS)
    colour = {"funk": {"maj": "dom7", "min": "min7"}, "ballad": {"maj": "maj7", "min": "min7"}}
    changes = colour.get(style, {"maj": _choice(rng, ("sus2", "sus4", "maj7"))})
    return tuple(
        (root, changes.get(quality, quality) if rng.random() < 0.3 else quality)
        for root, quality in progression
    )


def _section_chords(
    start: float, bars: int, key: int, progression: tuple, bars_per_chord: float
) -> tuple[_Chord, ...]:
    chords, beat, index, end = [], start, 0, start + 4 * bars
    while beat < end - 1e-6:
        root, quality = progression[index % len(progression)]
        length = min(4 * bars_per_chord, end - beat)
        chords.append(_Chord(beat, beat + length, (key + root) % 12, CHORD_INTERVALS[quality]))
        beat, index = beat + length, index + 1
    return tuple(chords)


def _drums(
    rng: np.random.Generator, sections: list[_Section], human: _Humaniser, style: str
) -> list[Note]:
    notes = []
    hats_on_ride = rng.random() < 0.5
    clap = style == "electronic" or (style in ("pop", "funk") and rng.random() < 0.3)
    tambourine = style in ("pop", "funk", "rock") and rng.random() < 0.3

    def hit(beat: float, pitch: int, velocity: float, jitter: float = 0.6) -> None:
        notes.append(Note(human.time(beat, jitter), 0.25, pitch, human.velocity(velocity)))

    for number, section in enumerate(sections):
        if "drums" not in section.active:
            continue
        kick, snare, hats = GROOVES[section.groove]
        level = 80 + 12 * section.intensity
        cymbal = RIDE if section.intensity == 2 and hats_on_ride else CLOSED_HAT
        soft = section.intensity == 0
        if number > 0 or section.name != "intro":
            hit(section.start, _choice(rng, CRASHES), level + 15)
        for bar in range(section.bars):
            bar_start = section.start + 4 * bar
            fill = bar == section.bars - 1 and number + 1 < len(sections) and rng.random() < 0.75
            fill_from = 16 - 4 * int(rng.integers(1, 3)) if fill else 16
            for step in range(16):
                beat = bar_start + step / 4
                accent = 8 if step % 4 == 0 else 0
                if step >= fill_from:
                    if step % 2 == 0 or rng.random() < 0.6:
                        tom = TOMS[min(len(TOMS) - 1, (step - fill_from) * len(TOMS) // 8)]
                        hit(beat, _choice(rng, (SNARE, tom, tom)), level + 5 + step - fill_from)
                    continue
                if kick[step] == "x" and not (soft and step % 8):
                    hit(beat, KICK, level + 10 + accent, 0.4)
                elif kick[step] == "." and section.intensity == 2 and rng.random() < 0.03:
                    hit(beat, KICK, level - 5)
                if snare[step] == "x":
                    hit(beat, SIDE_STICK if soft else SNARE, level + 12)
                    if clap:
                        hit(beat, CLAP, level)
                elif snare[step] == "g" and rng.random() < 0.85:
                    hit(beat, SNARE, 35)
                if hats[step] != "." and not (soft and hats[step] == "o"):
                    pitch = OPEN_HAT if hats[step] == "o" and cymbal == CLOSED_HAT else cymbal
                    hit(beat, pitch, level - 12 + accent + 6 * (step % 2 == 0))
                elif soft and step % 8 == 4 and section.name == "intro":
                    hit(beat, PEDAL_HAT, level - 20)
                if tambourine and section.intensity == 2 and snare[step] == "x":
                    hit(beat, TAMBOURINE, level - 15)
    return notes


def _bass(
    rng: np.random.Generator, sections: list[_Section], human: _Humaniser, patterns: Sequence[str]
) -> list[Note]:
    notes = []
    for section in sections:
        if "bass" not in section.active:
            continue
        variants = BASS_PATTERNS[_choice(rng, patterns)]
        pattern = _choice(rng, variants)
        for bar in range(section.bars):
            bar_start = section.start + 4 * bar
            if bar == section.bars - 1 and rng.random() < 0.3:
                pattern = _choice(rng, variants)  # turnaround bars vary
            for step, length, symbol in _events(pattern):
                beat = bar_start + step / 4
                chord, following = _chord_at(section, beat)
                root = _bass_root(chord.root)
                pitch = {"R": root, "5": root + 7, "8": root + 12, "x": root}.get(symbol)
                if symbol == "a":
                    target = _bass_root(following.root)
                    pitch = target + _choice(rng, (-1, 1, -2, 2)) if target != root else root + 7
                velocity = 40 if symbol == "x" else 88 + 8 * (step % 4 == 0)
                duration = 0.12 if symbol == "x" else min(length / 4 * 0.92, chord.end - beat)
                notes.append(
                    Note(human.time(beat), max(duration, 0.1), pitch, human.velocity(velocity))
                )
    return notes


def _comp(
    rng: np.random.Generator, sections: list[_Section], human: _Humaniser, kind: str, name: str
) -> list[Note]:
    notes: list[Note] = []
    low = {"power": 40, "strum": 43, "funk": 55, "arpeggio": 48}.get(kind, 50)
    size = {"power": 3, "strum": 5, "funk": 3, "arpeggio": 4}.get(kind, 4)
    previous: list[int] | None = None
    strum_ms = rng.uniform(8, 22)
    order = _choice(rng, ("up", "updown", "broken"))
    for section in sections:
        if name not in section.active:
            continue
        pattern = _choice(rng, COMP_PATTERNS[kind])
        level = 58 + 10 * section.intensity + (kind in ("power", "strum")) * 6
        if kind == "sustain":
            for chord in section.chords:
                previous = _voicing(chord, low, previous, size)
                for pitch in previous:
                    start = human.time(chord.start, 1.5)
                    duration = chord.end - chord.start - 0.05
                    notes.append(Note(start, duration, pitch, human.velocity(level - 5)))
            continue
        arpeggio_index = 0
        for bar in range(section.bars):
            bar_start = section.start + 4 * bar
            for step, length, symbol in _events(pattern):
                if symbol != "X" and rng.random() < 0.05:
                    continue  # an occasional missed hit keeps the loop from sounding pasted
                beat = bar_start + step / 4
                chord, _ = _chord_at(section, beat)
                if kind == "power":
                    root = 40 + (chord.root - 40) % 12
                    voicing = [root, root + 7, root + 12]
                else:
                    voicing = _voicing(chord, low, previous, size)
                previous = voicing
                velocity = level + (12 if symbol == "X" else 0) - (10 if symbol == "u" else 0)
                duration = min(length / 4 * 0.9, chord.end - beat)
                if kind in ("funk", "stab", "offbeat"):
                    duration = min(duration, 0.2)
                elif kind == "power" and section.intensity < 2 and length < 4:
                    duration = 0.15  # palm-muted
                if kind == "arpeggio":
                    sequence = {
                        "up": voicing,
                        "updown": voicing + voicing[-2:0:-1],
                        "broken": [voicing[0], voicing[2], voicing[1], voicing[3 % len(voicing)]],
                    }[order]
                    pitch = sequence[arpeggio_index % len(sequence)]
                    arpeggio_index += 1
                    notes.append(
                        Note(human.time(beat), duration, pitch, human.velocity(velocity - 12))
                    )
                    continue
                strummed = voicing[::-1] if symbol == "u" else voicing
                spread = strum_ms * human.beats_per_ms if kind in ("strum", "power") else 0.0
                start = human.time(beat)
                for index, pitch in enumerate(strummed):
                    onset = start + index * spread
                    notes.append(
                        Note(onset, max(0.05, duration - index * spread), pitch,
                             human.velocity(velocity - 3 * index))
                    )  # fmt: skip
    return notes


def compose_song(
    rng: np.random.Generator, seconds: float | None = None, style: str | None = None
) -> Song:
    """A random song of `seconds` or up to 2 bars less (drawn in [67, 149] when None, so that
    songs with their last second of reverb last 60 to 150 s) in `style` (one of `STYLES`,
    random when None)."""
    style = style or _choice(rng, sorted(STYLES))
    spec = STYLES[style]
    seconds = float(rng.uniform(67, 149)) if seconds is None else float(seconds)
    tempo = float(round(rng.uniform(*spec.tempo), 1))
    key, minor = int(rng.integers(12)), bool(rng.random() < 0.45)
    swung = rng.random() < spec.swing_chance
    unit = 0.25 if style == "funk" or rng.random() < 0.3 else 0.5
    human = _Humaniser(rng, tempo, float(rng.uniform(0.15, 0.33)) if swung else 0.0, unit)

    count = int(rng.integers(spec.parts[0], spec.parts[1] + 1))
    picks = rng.permutation(len(spec.comping))[:count]
    comping = [spec.comping[int(index)] for index in sorted(picks)]
    comping_names = [f"{kind}{index}" for index, (kind, _) in enumerate(comping)]

    # The final chord and its ring-out take 5 beats after the last section.
    bars_wanted = max(1, int((seconds * tempo / 60 - 5) // 4))
    plan = _plan_sections(rng, bars_wanted)
    progressions = {name: _progression(rng, minor, style) for name in ("verse", "chorus", "bridge")}
    progressions["intro"] = progressions["outro"] = progressions["verse"]
    progressions["breakdown"] = progressions["chorus"]
    bars_per_chord = {name: _choice(rng, (0.5, 1, 1, 2)) for name in progressions}
    grooves = {name: _choice(rng, spec.grooves) for name in ("verse", "chorus", "bridge")}
    sections, beat = [], 0.0
    for name, bars in plan:
        intensity = INTENSITY[name]
        active = {"drums", "bass"}
        if name in ("intro", "breakdown"):
            active = {"drums"} if rng.random() < 0.5 else set()
            active |= {"bass"} if rng.random() < 0.4 else set()
            active |= {_choice(rng, comping_names)}
        elif intensity == 2:
            active |= set(comping_names)
        else:
            keep = int(rng.integers(max(1, len(comping_names) - 1), len(comping_names) + 1))
            active |= {comping_names[int(i)] for i in rng.permutation(len(comping_names))[:keep]}
        chords = _section_chords(beat, bars, key, progressions[name], bars_per_chord[name])
        groove = grooves.get(name, grooves["verse"])
        sections.append(_Section(name, beat, bars, intensity, chords, groove, frozenset(active)))
        beat += 4 * bars

    # The ending: the tonic held under a crash for 3.5 beats, then 1.5 beats of reverb.
    tonic = _Chord(beat, beat + 4, key, CHORD_INTERVALS["min" if minor else "maj"])
    parts_notes: list[tuple[str, int, int, list[Note]]] = []
    drum_notes = _drums(rng, sections, human, style)
    drum_notes += [Note(beat, 2, KICK, 100), Note(beat, 2, CRASHES[0], 110)]
    parts_notes.append(("drums", DRUM_CHANNEL, _choice(rng, spec.drum_kits), drum_notes))
    bass_notes = _bass(rng, sections, human, spec.bass_patterns)
    bass_notes.append(Note(beat, 3.5, _bass_root(key), 90))
    parts_notes.append(("bass", 0, _choice(rng, spec.bass_programs), bass_notes))
    for channel, ((kind, programs), name) in enumerate(zip(comping, comping_names, strict=True), 1):
        notes = _comp(rng, sections, human, kind, name)
        notes += [Note(beat, 3.5, pitch, 70) for pitch in _voicing(tonic, 50, None, 4)]
        parts_notes.append((name, channel, _choice(rng, programs), notes))

    parts = []
    for name, channel, program, notes in parts_notes:
        if name == "drums":
            volume, pan = int(rng.integers(100, 118)), 64
        elif name == "bass":
            volume, pan = int(rng.integers(95, 112)), 64
        else:
            volume, pan = int(rng.integers(70, 100)), int(rng.integers(24, 105))
        reverb = int(rng.integers(15, 70))
        notes = sorted(notes, key=lambda note: (note.start, note.pitch))
        parts.append(Part(name, channel, program, volume, pan, reverb, tuple(notes)))
    names = tuple(name for name, _ in plan)
    return Song(style, tempo, key, minor, names, beat + 5, tuple(parts))


def plan_songs(seed: int, minutes: float, styles: Sequence[str] | None = None) -> list[Song]:
    """The songs of one rendered set: song k is composed from the random generator
    `[seed, k]`, in a style drawn from `styles` (any style when None or empty), until they add
    up to `minutes`. The list depends only on the arguments, so a stopped render can resume."""
    styles = sorted(set(styles or ()))
    unknown = [name for name in styles if name not in STYLES]
    if unknown:
        raise BandRenderError(
            f"unknown style {', '.join(unknown)} (known: {', '.join(sorted(STYLES))})"
        )
    songs: list[Song] = []
    planned = 0.0
    while planned < minutes * 60:
        rng = np.random.default_rng([seed, len(songs)])
        style = styles[int(rng.integers(len(styles)))] if styles else None
        songs.append(compose_song(rng, style=style))
        planned += songs[-1].seconds
    return songs


# -- rendering --------------------------------------------------------------------------------


def find_fluidsynth() -> str:
    path = shutil.which("fluidsynth")
    if path is None:
        raise BandRenderError(f"fluidsynth is not installed; {INSTALL_FLUIDSYNTH}")
    return path


def find_soundfont(path: str | os.PathLike | None = None) -> Path:
    """`path` if given, else the first General MIDI soundfont of `SOUNDFONT_PATHS` present."""
    if path is not None:
        if not Path(path).is_file():
            raise BandRenderError(f"soundfont {path} does not exist; {INSTALL_FLUIDSYNTH}")
        return Path(path)
    for candidate in SOUNDFONT_PATHS:
        if Path(candidate).is_file():
            return Path(candidate)
    raise BandRenderError(f"no General MIDI soundfont found; {INSTALL_FLUIDSYNTH}")


def render_midi(
    midi_path: str | os.PathLike,
    soundfont: str | os.PathLike | None = None,
    *,
    sample_rate: int = 44100,
    gain: float = 0.4,
    niceness: int = 10,
    timeout_s: float = 1800,
) -> np.ndarray:
    """Render a MIDI file with fluidsynth (reverb and chorus on): float32 `(2, samples)`."""
    fluidsynth, soundfont = find_fluidsynth(), find_soundfont(soundfont)
    with tempfile.TemporaryDirectory(prefix="vocalsep-band-") as folder:
        wav = Path(folder) / "render.wav"
        command = [fluidsynth, "-n", "-i", "-q", "-F", str(wav), "-T", "wav", "-O", "float"]
        command += ["-r", str(sample_rate), "-g", str(gain), "-o", "synth.cpu-cores=1"]
        command += [str(soundfont), str(midi_path)]
        if niceness and shutil.which("nice"):
            command = ["nice", "-n", str(niceness), *command]
        try:
            result = subprocess.run(
                command, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise BandRenderError(f"fluidsynth failed on {midi_path} ({error})") from None
        if result.returncode or not wav.is_file():
            lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
            reason = lines[-1] if lines else f"exit status {result.returncode}"
            raise BandRenderError(f"fluidsynth failed on {midi_path} ({reason})")
        audio, rate = load_audio(wav)
    if rate != sample_rate or audio.shape[0] != 2:
        raise BandRenderError(f"fluidsynth wrote {audio.shape[0]} channels at {rate} Hz")
    return audio


def normalise(audio: np.ndarray, rms_db: float = -18.0, peak: float = 0.95) -> np.ndarray:
    """Scale to `rms_db` dBFS RMS, or less where the peak would pass `peak`; trim the silent
    tail (below -60 dBFS) and fade the last 50 ms out."""
    audio = np.nan_to_num(np.asarray(audio, dtype=np.float32))
    loud = np.flatnonzero(np.abs(audio).max(axis=0) > 1e-3 * max(np.abs(audio).max(), 1e-9))
    if loud.size:
        audio = audio[:, : loud[-1] + 1]
    rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
    if rms < 1e-8:
        return audio
    scale = min(10 ** (rms_db / 20) / rms, peak / float(np.abs(audio).max()))
    audio = audio * scale
    fade = min(audio.shape[1], 2205)
    audio[:, audio.shape[1] - fade :] *= np.linspace(1, 0, fade, dtype=np.float32)
    return audio.astype(np.float32)


def amp(
    audio: np.ndarray, drive_db: float, sample_rate: int, cabinet_hz: float = 5000.0
) -> np.ndarray:
    """A guitar amplifier and cabinet: `augment.overdrive` with `drive_db` of gain over the
    stem's peak, then a zero-phase second-order low-pass at `cabinet_hz` (a speaker cabinet
    passes little above 5 kHz). The RMS is kept."""
    audio = np.asarray(audio, dtype=np.float32)
    driven = augment.overdrive(audio, drive_db)
    spectrum = np.fft.rfft(driven, axis=-1)
    freqs = np.fft.rfftfreq(driven.shape[-1], 1 / sample_rate)
    spectrum *= 1 / np.sqrt(1 + (freqs / cabinet_hz) ** 4)
    out = np.fft.irfft(spectrum, n=driven.shape[-1], axis=-1)
    return (out * (augment.rms(audio) / augment.rms(out))).astype(np.float32)


def _is_driven_guitar(part: Part) -> bool:
    return part.channel != DRUM_CHANNEL and part.program in DRIVEN_GUITARS


def render_song(
    song: Song,
    path: str | os.PathLike,
    *,
    soundfont: str | os.PathLike | None = None,
    sample_rate: int = 44100,
    format: str = "flac",
    niceness: int = 10,
    overwrite: bool = False,
    guitar_drive_db: float = 0.0,
) -> Path:
    """Render `song` to a normalised stereo 16-bit `format` file at `path` (written atomically).

    With `guitar_drive_db` > 0 the overdriven and distortion guitars (GM 29, 30) are rendered
    on their own and sent through `amp` before they are mixed back at their own level: the
    soundfont's samples are much tamer than a real distorted guitar."""
    find_fluidsynth()
    find_soundfont(soundfont)  # fail before composing a temporary file
    guitars = tuple(part for part in song.parts if _is_driven_guitar(part))
    split = guitar_drive_db > 0 and guitars
    pieces = (
        [
            replace(song, parts=tuple(p for p in song.parts if not _is_driven_guitar(p))),
            replace(song, parts=guitars),
        ]
        if split
        else [song]
    )
    rendered = []
    with tempfile.TemporaryDirectory(prefix="vocalsep-band-") as folder:
        for index, piece in enumerate(pieces):
            midi = Path(folder) / f"song{index}.mid"
            midi.write_bytes(midi_bytes(piece))
            audio = render_midi(midi, soundfont, sample_rate=sample_rate, niceness=niceness)
            # fluidsynth keeps going while the reverb decays; a second of it is enough.
            rendered.append(audio[:, : round((song.seconds + 1) * sample_rate)])
    if split:
        rest, guitar = rendered
        length = max(rest.shape[1], guitar.shape[1])
        audio = np.zeros((2, length), np.float32)
        audio[:, : rest.shape[1]] += rest
        audio[:, : guitar.shape[1]] += amp(guitar, guitar_drive_db, sample_rate)
    else:
        audio = rendered[0]
    return write_audio(path, normalise(audio), sample_rate, format, "16", overwrite=overwrite)
