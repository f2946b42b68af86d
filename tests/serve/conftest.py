"""Fixtures of the page's server tests: skipped without the serve extra."""

from __future__ import annotations

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from serving import Server, song  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for a module's tests: the default model, a 2 MB upload limit."""
    data = tmp_path_factory.mktemp("serve")
    running = Server(data, "--max-upload-mb", "2")
    yield running
    stderr = running.stop()
    assert "Traceback" not in stderr, stderr


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("songs")
    return {
        "short": song(folder / "four seconds.wav", 4.0),
        "tiny": song(folder / "tiny.wav", 0.3),
        "medium": song(folder / "medium.wav", 6.0),
    }
