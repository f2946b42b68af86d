"""What every subcommand shares: one-line messages, common options, progress bars."""

from __future__ import annotations

import argparse
import sys

PROG = "vocalsep"
KEEP_HINT = " or --skip-existing to keep it"


def say(kind: str, message: object, file=None) -> None:
    """`vocalsep: KIND: message` on stderr (or `file`), always exactly one line."""
    text = " ".join(str(message).split())
    print(f"{PROG}: {kind}: {text}", file=sys.stderr if file is None else file)


def print_error(message: object, exists_hint: str = "") -> None:
    """One error line; an existing output is named with the flag that replaces it (the API's
    own message names `overwrite=True`)."""
    from ..core.errors import OutputExistsError

    if isinstance(message, OutputExistsError):
        message = f"{message.path} exists; pass --overwrite to replace it{exists_hint}"
    say("error", message)


def run_job(job, work):
    """`work()` for one input of a batch: what it returns, or None after one error line (the
    batch goes on with the next input)."""
    from ..core.errors import VocalsepError

    try:
        return work()
    except VocalsepError as error:
        print_error(error, KEEP_HINT)
    except OSError as error:
        print_error(f"{job.input}: {error.strerror or error}; check the disk and the output folder")
    return None


def option_error(error) -> str:
    """An `OptionError` with the flags of the options it names."""
    flags = ", ".join("--" + name.replace("_", "-") for name in getattr(error, "options", ()))
    return f"{error} ({flags})" if flags else str(error)


def one_line_warnings(show):
    """A `warnings.showwarning` that prints vocalsep's own warnings as one
    `vocalsep: warning: ...` line and hands every other warning to `show`."""
    from ..core.errors import VocalsepWarning

    def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, VocalsepWarning):
            say("warning", message, file)
        else:
            show(message, category, filename, lineno, file, line)

    return show_warning


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda", "mps"],
        help="where the network runs; auto: CUDA, then Apple MPS, then the CPU (default: auto)",
    )


def add_existing(parser: argparse.ArgumentParser) -> None:
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    existing.add_argument(
        "--skip-existing",
        action="store_true",
        help="keep existing outputs and skip inputs whose outputs all exist (resumes an "
        "interrupted batch; missing outputs of an input are still written)",
    )


def report_skipped(jobs) -> None:
    skipped = [job for job in jobs if job.skipped]
    if skipped:
        say("info", f"kept the existing outputs of {len(skipped)} input(s) (--skip-existing)")


def _evaluation_bar(unit: str, no_progress: bool):
    """A progress bar (shown only on a terminal) and the `progress(done, total, current)`
    callback the evaluation functions call."""
    from tqdm import tqdm

    hide = True if no_progress else None  # None: tqdm shows the bar only on a terminal
    bar = tqdm(desc="evaluate", unit=unit, disable=hide, leave=False, delay=0.5)

    def progress(done: int, total: int, current: str | None) -> None:
        bar.total = total
        bar.n = done
        if current:
            bar.set_postfix_str(current, refresh=False)
        bar.refresh()

    return bar, progress


def with_bar(unit: str, no_progress: bool, call):
    """`call(progress)` under an evaluation progress bar; a library error is printed as one
    line (after the bar is closed, so it does not land on the bar's line) and gives None."""
    from ..core.errors import OptionError, VocalsepError

    bar, progress = _evaluation_bar(unit, no_progress)
    try:
        return call(progress)
    except OptionError:
        raise  # the caller reports it as a usage error
    except (VocalsepError, ValueError) as error:
        bar.close()
        print_error(error)
        return None
    finally:
        bar.close()
