"""BSSEval v4 evaluation: agreement with museval, known orderings, JSON, silence, shapes."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from support import make_model, synth_stems, write_track, write_wav

from vocalsep import api
from vocalsep.audio.evaluation import (
    METRICS,
    EstimatesFolder,
    EvaluationError,
    EvaluationResult,
    bss_eval,
    evaluate_tracks,
    irm_estimates,
    mixture_estimates,
    score_track,
    separator_estimator,
)
from vocalsep.audio.published import format_comparison, published_results
from vocalsep.audio.separator import Separator
from vocalsep.audio.tracks import TrackError, find_folder_tracks, load_track
from vocalsep.core.errors import OptionError, OutputExistsError

museval = pytest.importorskip("museval")

RATE = 8000
SECONDS = 2
DEV = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "audio" / "dev"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Three mono 2 s tracks at 8 kHz."""
    root = tmp_path_factory.mktemp("dataset")
    for seed in range(3):
        vocals, accompaniment = synth_stems(RATE, RATE * SECONDS, seed=seed)
        write_track(root / f"track{seed}", vocals, accompaniment, RATE)
    return root


def noisy(audio, seed=0, level=0.05):
    """Estimates with a little of the other source and some noise: neither perfect nor bad."""
    rng = np.random.default_rng(seed)
    vocals, accompaniment = audio["vocals"], audio["accompaniment"]
    return {
        "vocals": vocals + 0.1 * accompaniment + level * rng.standard_normal(vocals.shape),
        "accompaniment": accompaniment + 0.1 * vocals + level * rng.standard_normal(vocals.shape),
    }


def test_medians_agree_with_a_direct_museval_call(dataset):
    tracks = find_folder_tracks(dataset)
    result = evaluate_tracks(
        tracks,
        lambda name, audio, rate: noisy(audio, seed=len(name)),
        method="noisy",
        dataset="synthetic",
    )
    direct = {"vocals": [], "accompaniment": []}
    for track in tracks:
        audio = load_track(track)
        estimates = noisy(audio, seed=len(track.name))
        references = np.stack([audio["vocals"].T, audio["accompaniment"].T])
        sdr, isr, sir, sar = museval.evaluate(
            references,
            np.stack([estimates["vocals"].T, estimates["accompaniment"].T]),
            win=RATE,
            hop=RATE,
        )
        for i, target in enumerate(direct):
            direct[target].append({"SDR": sdr[i], "SIR": sir[i], "SAR": sar[i], "ISR": isr[i]})
    for target, per_track in direct.items():
        for metric in METRICS:
            expected = np.median([np.nanmedian(scores[metric]) for scores in per_track])
            assert abs(result.summary[target][metric] - expected) < 0.05, (target, metric)
            for track, scores in zip(result.tracks, per_track, strict=True):
                assert track.medians[target][metric] == pytest.approx(
                    np.nanmedian(scores[metric]), abs=1e-6
                )


def test_perfect_above_mixture_above_swapped():
    vocals, accompaniment = synth_stems(RATE, RATE * SECONDS, seed=1)
    audio = {"vocals": vocals, "accompaniment": accompaniment, "mixture": vocals + accompaniment}
    references = {"vocals": vocals, "accompaniment": accompaniment}

    def sdr(estimates):
        medians = score_track("song", references, estimates, RATE).medians
        return {target: medians[target]["SDR"] for target in references}

    perfect = sdr(references)
    mixture = sdr(mixture_estimates(audio))
    swapped = sdr({"vocals": accompaniment, "accompaniment": vocals})
    irm = sdr(irm_estimates(audio))
    for target in references:
        assert perfect[target] > mixture[target] + 50  # may be +inf: an exact estimate
        assert irm[target] > mixture[target] + 5
        assert swapped[target] < mixture[target]
    # the mixture as both estimates: vocals and accompaniment SDRs mirror each other
    assert mixture["vocals"] == pytest.approx(-mixture["accompaniment"], abs=0.5)


def test_json_round_trips_through_museval(dataset, tmp_path):
    out = tmp_path / "scores"
    result = evaluate_tracks(
        find_folder_tracks(dataset),
        lambda name, audio, rate: noisy(audio),
        method="noisy",
        dataset="synthetic",
        output_dir=out,
        csv_path=tmp_path / "scores.csv",
    )
    files = sorted((out / "test").glob("*.json"))
    assert [f.stem for f in files] == ["track0", "track1", "track2"]
    assert not list(out.rglob(".*"))  # no temporary files left
    # museval's own reader: EvalStore aggregates to the same medians
    store = museval.EvalStore()
    store.add_eval_dir(out)
    aggregated = store.agg_frames_tracks_scores()
    for target in ("vocals", "accompaniment"):
        for metric in METRICS:
            assert aggregated[target][metric] == pytest.approx(
                result.summary[target][metric], abs=1e-4
            )
    # and each file validates against museval's schema and reads into its data frame
    schema = museval.TrackStore("x").schema
    for path in files:
        data = json.loads(path.read_text())
        museval.aggregate.validate(data, schema)
        frame = museval.json2df(data, path.stem)
        assert set(frame.metric) == set(METRICS) and len(frame) == 4 * 2 * SECONDS
    lines = (tmp_path / "scores.csv").read_text().splitlines()
    assert lines[0] == "scope,track,target,SDR,SIR,SAR,ISR,scored_windows,windows"
    assert len(lines) == 1 + 3 * 2 + 2 and lines[-1].startswith("overall,,accompaniment,")


def test_outputs_are_not_replaced_without_overwrite(dataset, tmp_path):
    tracks = find_folder_tracks(dataset)[:1]
    existing = tmp_path / "test" / "track0.json"
    existing.parent.mkdir()
    existing.write_text("precious")
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        evaluate_tracks(tracks, lambda *a: None, method="-", dataset="-", output_dir=tmp_path)
    assert existing.read_text() == "precious"
    evaluate_tracks(
        tracks,
        lambda name, audio, rate: mixture_estimates(audio),
        method="-",
        dataset="-",
        output_dir=tmp_path,
        overwrite=True,
    )
    assert json.loads(existing.read_text())["targets"][0]["name"] == "vocals"


def test_silent_reference_windows_are_skipped():
    vocals, accompaniment = synth_stems(RATE, RATE * 4)
    vocals[:, RATE : 2 * RATE] = 0  # the singer pauses for the second window
    references = {"vocals": vocals, "accompaniment": accompaniment}
    estimates = noisy(references)
    result = score_track("pause", references, estimates, RATE)
    assert result.windows == 4
    for target in ("vocals", "accompaniment"):  # museval skips the window for every target
        assert result.scored_windows(target) == 3
        assert np.isnan(result.frames[target]["SDR"][1])
        expected = np.median(np.delete(result.frames[target]["SDR"], 1))
        assert result.medians[target]["SDR"] == pytest.approx(expected)
    # the JSON keeps the skipped window, as NaN
    data = json.loads(result.json)
    assert math.isnan(data["targets"][0]["frames"][1]["metrics"]["SDR"])


def test_silent_reference_track_is_left_out_of_the_median():
    """museval refuses an all-zero source; the track gets NaN windows and drops out."""
    vocals, accompaniment = synth_stems(RATE, RATE * 2)
    instrumental = {"vocals": np.zeros_like(vocals), "accompaniment": accompaniment}
    silent = score_track(
        "instrumental", instrumental, mixture_estimates({"mixture": accompaniment}), RATE
    )
    assert silent.scored_windows("vocals") == 0 and silent.windows == 2
    assert math.isnan(silent.medians["vocals"]["SDR"])
    references = {"vocals": vocals, "accompaniment": accompaniment}
    sung = score_track("sung", references, noisy(references), RATE)
    result = EvaluationResult("-", "-", ("vocals", "accompaniment"), (silent, sung))
    assert result.summary["vocals"]["SDR"] == pytest.approx(sung.medians["vocals"]["SDR"])
    assert result.scored_tracks("vocals") == 1
    assert "1/2 tracks" in result.table()
    # a silent estimate is skipped the same way, not an exception
    quiet = score_track("quiet", references, {**noisy(references), "vocals": 0 * vocals}, RATE)
    assert quiet.scored_windows("vocals") == 0


def test_mono_estimates_against_stereo_references(tmp_path):
    vocals, accompaniment = synth_stems(RATE, RATE * 2, channels=2)
    write_track(tmp_path / "data" / "song", vocals, accompaniment, RATE)
    estimates = tmp_path / "estimates" / "song"
    # mono, at another rate and format: copied to both channels, resampled
    write_wav(estimates / "vocals.flac", vocals.mean(0), 16000 // 2, "PCM_24")
    write_wav(estimates / "accompaniment.wav", accompaniment.mean(0), RATE)
    tracks = find_folder_tracks(tmp_path / "data")
    result = evaluate_tracks(
        tracks, EstimatesFolder(tmp_path / "estimates"), method="-", dataset="-"
    )
    duplicated = {
        "vocals": np.repeat(vocals.mean(0, keepdims=True), 2, axis=0),
        "accompaniment": np.repeat(accompaniment.mean(0, keepdims=True), 2, axis=0),
    }
    references = {"vocals": vocals, "accompaniment": accompaniment}
    expected = score_track("song", references, duplicated, RATE)
    for target in ("vocals", "accompaniment"):
        assert result.tracks[0].medians[target]["SDR"] == pytest.approx(
            expected.medians[target]["SDR"], abs=1e-3
        )


def test_estimates_folder_errors(dataset, tmp_path):
    with pytest.raises(EvaluationError, match="does not exist"):
        EstimatesFolder(tmp_path / "nothing")
    folder = EstimatesFolder(tmp_path)
    write_wav(tmp_path / "track0" / "vocals.wav", np.zeros((1, 10), np.float32), RATE)
    with pytest.raises(EvaluationError, match="no accompaniment estimate for track track0"):
        folder.paths("track0")
    write_wav(tmp_path / "track0" / "vocals.flac", np.zeros((1, 10), np.float32), RATE, "PCM_16")
    with pytest.raises(EvaluationError, match="keep one"):
        folder.paths("track0")
    # an estimate of the wrong length is a one-line error naming the track
    short = tmp_path / "short"
    write_wav(short / "track0" / "vocals.wav", np.ones((1, RATE), np.float32), RATE)
    write_wav(short / "track0" / "accompaniment.wav", np.ones((1, RATE), np.float32), RATE)
    with pytest.raises(TrackError, match="track0") as error:
        evaluate_tracks(
            find_folder_tracks(dataset)[:1], EstimatesFolder(short), method="-", dataset="-"
        )
    assert "\n" not in str(error.value)


def test_irm_masks_sum_to_the_mixture():
    vocals, accompaniment = synth_stems(RATE, RATE * 2, channels=2)
    audio = {"vocals": vocals, "accompaniment": accompaniment, "mixture": vocals + accompaniment}
    for power in (1.0, 2.0):
        estimates = irm_estimates(audio, power=power)
        assert estimates["vocals"].shape == vocals.shape
        total = estimates["vocals"] + estimates["accompaniment"]
        np.testing.assert_allclose(total, audio["mixture"], atol=1e-4)


def test_model_estimates(dataset):
    separator = Separator(make_model(), device="cpu")
    estimate = separator_estimator(separator)
    audio = load_track(find_folder_tracks(dataset)[0])
    stems = estimate("track0", audio, RATE)
    assert stems["vocals"].shape == audio["mixture"].shape
    np.testing.assert_allclose(
        stems["vocals"] + stems["accompaniment"], audio["mixture"], atol=1e-5
    )
    with pytest.raises(EvaluationError, match="not vocals"):
        separator_estimator(Separator(make_model(targets=("drums",)), device="cpu"))


def test_bss_eval_checks_shapes():
    with pytest.raises(EvaluationError, match="one"):
        bss_eval({"vocals": np.ones((1, 100))}, {"vocals": np.ones((2, 100))}, RATE)


def test_published_results_have_a_source_metric_and_data_per_row():
    rows = published_results()
    assert len(rows) >= 5
    for row in rows:
        assert row.source and row.training_data and 2015 <= row.year <= 2030
        assert row.metric in ("cSDR", "uSDR", "other")
        assert row.extra_data in ("no", "unknown") or row.extra_data.startswith("yes: ")
        assert math.isnan(row.vocals_sdr) or 0 < row.vocals_sdr < 15
        assert row.note or math.isfinite(row.vocals_sdr)  # a missing number says why
    by_name = {(row.method, row.metric): row for row in rows}
    assert by_name["Open-Unmix UMX", "cSDR"].vocals_sdr == 6.32
    # The current models a reader compares with today, each with its metric.
    for name in ("HT Demucs", "BS-RoFormer (L=6)", "SCNet", "TFC-TDF-UNet v3 (MDX23C)"):
        assert math.isfinite(by_name[name, "cSDR"].vocals_sdr)
    assert by_name["BSRNN (Band-Split RNN)", "uSDR"].vocals_sdr == 10.04
    assert by_name["BSRNN (Band-Split RNN)", "cSDR"].vocals_sdr == 10.01
    assert ("Mel-RoFormer", "cSDR") in by_name


def test_comparison_is_labelled(dataset):
    result = evaluate_tracks(
        find_folder_tracks(dataset)[:1],
        lambda name, audio, rate: mixture_estimates(audio),
        method="baseline mixture",
        dataset="folder x",
    )
    text = format_comparison(result)
    assert "DIFFERENT TEST DATA" in text and "this run: baseline mixture" in text
    assert "Open-Unmix UMX" in text and "[1]" in text
    # Metrics are never mixed: this run sits with the cSDR rows, uSDR rows come under their
    # own heading that says they are not comparable.
    lines = text.splitlines()
    csdr = lines.index(next(line for line in lines if line.startswith("cSDR:")))
    usdr = lines.index(next(line for line in lines if line.startswith("uSDR:")))
    assert "NOT comparable" in lines[usdr] and csdr < usdr
    assert lines[csdr + 2].startswith("this run: baseline mixture")
    bsrnn = [i for i, line in enumerate(lines) if line.startswith("BSRNN (Band-Split RNN) ")]
    assert len(bsrnn) == 2 and csdr < bsrnn[0] < usdr < bsrnn[1]
    assert "10.01" in lines[bsrnn[0]] and "10.04" in lines[bsrnn[1]]
    same = EvaluationResult("m", "MUSDB18 test", result.targets, result.tracks, True)
    assert "DIFFERENT" not in format_comparison(same)


def test_api_options(dataset, tiny_checkpoint):
    with pytest.raises(OptionError, match="exactly one"):
        api.evaluate(dataset, baseline="irm", model=tiny_checkpoint)
    with pytest.raises(OptionError, match="exactly one"):
        api.evaluate(dataset)
    with pytest.raises(OptionError, match="unknown target"):
        api.evaluate(dataset, baseline="irm", targets=["drums"])
    with pytest.raises(EvaluationError, match="matches"):
        api.evaluate(dataset, baseline="irm", names=["nope"])
    result = api.evaluate(dataset, model=tiny_checkpoint, names=["track1"], device="cpu")
    assert [t.name for t in result.tracks] == ["track1"] and "1 of 3 tracks" in result.dataset
    result = api.evaluate(dataset, baseline="mixture", targets=["vocals"], max_tracks=1)
    assert list(result.summary) == ["vocals"] and [t.name for t in result.tracks] == ["track0"]


def test_missing_museval_is_one_line(dataset, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "museval", None)
    with pytest.raises(EvaluationError, match=r"pip install 'vocalsep\[train\]'"):
        api.evaluate(dataset, baseline="irm")


@pytest.mark.slow
@pytest.mark.skipif(not DEV.is_dir(), reason="../shared/data/audio/dev is not available")
def test_dev_set_reference_figures():
    """The figures in shared/data/README.md: IRM 13.86 / 16.45 dB, mixture -0.37 / 0.37 dB."""
    irm = api.evaluate(DEV, baseline="irm").summary
    assert irm["vocals"]["SDR"] == pytest.approx(13.86, abs=0.02)
    assert irm["accompaniment"]["SDR"] == pytest.approx(16.45, abs=0.02)
    mixture = api.evaluate(DEV, baseline="mixture").summary
    assert mixture["vocals"]["SDR"] == pytest.approx(-0.37, abs=0.02)
    assert mixture["accompaniment"]["SDR"] == pytest.approx(0.37, abs=0.02)


def test_torch_is_not_needed_for_scores():
    """bss_eval takes numpy arrays only (torch tensors are for the models)."""
    vocals, accompaniment = synth_stems(RATE, RATE)
    scores = bss_eval(
        {"vocals": vocals, "accompaniment": accompaniment},
        {"vocals": vocals + 0.1 * accompaniment, "accompaniment": accompaniment + 0.1 * vocals},
        RATE,
    )
    assert set(scores) == {"vocals", "accompaniment"} and scores["vocals"]["SDR"].shape == (1,)
    assert not any(isinstance(v, torch.Tensor) for m in scores.values() for v in m.values())
