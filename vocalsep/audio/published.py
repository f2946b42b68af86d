"""Published MUSDB18 test results (`data/published_musdb18.csv`, shipped in the package) and
`vocalsep evaluate --compare published`: a result next to them, grouped by metric."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .evaluation import EvaluationResult


@dataclass(frozen=True)
class PublishedResult:
    """One published MUSDB18 test result (SDR in dB; NaN where not published)."""

    method: str
    year: int
    metric: str  # "cSDR" (museval median of medians, as `evaluate`), "uSDR" or "other"
    extra_data: str  # "no", "unknown" or "yes: what"
    vocals_sdr: float
    accompaniment_sdr: float
    training_data: str
    note: str
    source: str


PUBLISHED_METRICS = {
    "cSDR": "cSDR: BSSEval v4 median over 1 s windows, then over tracks -- the metric of this run",
    "uSDR": "uSDR: one SDR per whole track, mean over tracks -- NOT comparable with this run",
    "other": "other metrics (see each note) -- NOT comparable with this run",
}


def published_results() -> list[PublishedResult]:
    """The rows of `data/published_musdb18.csv` shipped inside the package."""
    text = resources.files(__package__).joinpath("data/published_musdb18.csv").read_text("utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return [
        PublishedResult(
            method=row["method"],
            year=int(row["year"]),
            metric=row["metric"],
            extra_data=row["extra_data"],
            vocals_sdr=float(row["vocals_sdr"] or "nan"),
            accompaniment_sdr=float(row["accompaniment_sdr"] or "nan"),
            training_data=row["training_data"],
            note=row["note"],
            source=row["source"],
        )
        for row in rows
    ]


def format_comparison(result: EvaluationResult) -> str:
    """This result's median SDRs next to published MUSDB18 test numbers, grouped by metric
    (cSDR, which this run reports, then uSDR and others, never mixed), oldest first, with the
    year, whether extra training data was used and a source per row; clearly marked when the
    data differ (anything but all 50 MUSDB18 test tracks)."""
    summary = result.summary
    if result.comparable_to_musdb_test:
        heading = "Published MUSDB18 test results (SDR, dB), same test data as this run."
    else:
        heading = (
            "Published MUSDB18 test results (SDR, dB) -- DIFFERENT TEST DATA: this run "
            f"used {result.dataset}, so the numbers below are context, not a comparison."
        )
    header = ("method", "year", "vocals", "accomp.", "extra data", "")
    this_run = (
        "this run: " + result.method,
        "",
        _short(summary.get("vocals", {}).get("SDR", math.nan)),
        _short(summary.get("accompaniment", {}).get("SDR", math.nan)),
        "",
        "",
    )
    published = sorted(published_results(), key=lambda row: row.year)  # stable: file order
    groups: list[tuple[str, list[tuple[str, ...]]]] = []
    notes = []
    for metric, title in PUBLISHED_METRICS.items():
        rows = [this_run] if metric == "cSDR" else []
        for row in (row for row in published if row.metric == metric):
            notes.append(
                f"[{len(notes) + 1}] {row.method}: {row.source}. Metric {row.metric}; trained on "
                f"{row.training_data}."
                + (f" {row.note[0].upper()}{row.note[1:]}." if row.note else "")
            )
            extra = "no" if row.extra_data == "no" else row.extra_data.split(":")[0]
            rows.append(
                (
                    row.method,
                    str(row.year),
                    _short(row.vocals_sdr),
                    _short(row.accompaniment_sdr),
                    extra,
                    f"[{len(notes)}]",
                )
            )
        if len(rows) > (metric == "cSDR"):
            groups.append((title, rows))
    every_row = [header] + [row for _, rows in groups for row in rows]
    widths = [max(len(row[column]) for row in every_row) for column in range(len(header))]
    aligns = ["<", ">", ">", ">", "<", "<"]

    def line(row: tuple[str, ...]) -> str:
        cells = [
            f"{cell:{align}{width}}" for cell, align, width in zip(row, aligns, widths, strict=True)
        ]
        return "  ".join(cells).rstrip()

    lines = [heading]
    for title, rows in groups:
        lines += ["", title, line(header), *map(line, rows)]
    return "\n".join([*lines, "", *notes])


def _short(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else "-"
