"""The karaoke page in a real headless browser (Debian's chromium and chromium-driver, driven by
selenium): upload a generated song, wait for the stems, play, move the voice-level slider,
download both stems and check them, and keep a screenshot of the finished page.

Skipped cleanly where chromium or its driver is missing (a user's machine); `.ci/run` installs
them and sets VOCALSEP_REQUIRE_BROWSER=1, so in CI a missing browser fails instead.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from serving import song

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
SCREENSHOTS = os.environ.get("VOCALSEP_SCREENSHOTS")  # keep the pictures here when set

if not (CHROMIUM and DRIVER):
    if os.environ.get("VOCALSEP_REQUIRE_BROWSER"):
        pytest.fail(
            "chromium and chromedriver are required here (apt-get install chromium "
            "chromium-driver)",
            pytrace=False,
        )
    pytest.skip(
        "no chromium/chromedriver (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )


@pytest.fixture
def browser(tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=1280,900",
        "--mute-audio",
    ):
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(DRIVER), options=options)
    driver.downloads = downloads
    yield driver
    driver.quit()


def _state(driver) -> str:
    return driver.execute_script("return document.body.dataset.state || ''")


def _wait_for_file(folder: Path, name: str, timeout: float = 30) -> Path:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        path = folder / name
        if path.exists() and not list(folder.glob("*.crdownload")):
            return path
        time.sleep(0.1)
    raise AssertionError(f"{name} was not downloaded: {sorted(os.listdir(folder))}")


def test_upload_play_mix_and_download_in_a_real_browser(server, browser, tmp_path):
    mixture_path = song(tmp_path / "my song.wav", 6.0)
    browser.get(server.url + "/")
    assert "vocalsep" in browser.title.lower()
    assert _state(browser) == "idle"
    browser.find_element(By.ID, "file-input").send_keys(str(mixture_path))
    WebDriverWait(browser, 120).until(lambda d: _state(d) in ("done", "failed"))
    assert _state(browser) == "done", browser.find_element(By.ID, "error").text

    # play, then move the voice level with the keyboard: the vocals' gain follows
    browser.find_element(By.ID, "play").click()
    slider = browser.find_element(By.ID, "voice-level")
    assert slider.get_attribute("value") == "0"
    slider.send_keys(Keys.ARROW_RIGHT * 30)
    WebDriverWait(browser, 10).until(
        lambda d: d.execute_script("return document.body.dataset.vocalsGain") == "0.3"
    )
    slider.send_keys(Keys.END)
    WebDriverWait(browser, 10).until(
        lambda d: d.execute_script("return document.body.dataset.vocalsGain") == "1"
    )

    # both downloads are the stems, and together they are the song
    mixture, rate = sf.read(mixture_path)
    stems = {}
    for stem in ("vocals", "accompaniment"):
        link = browser.find_element(By.ID, f"download-{stem}")
        assert link.get_attribute("download") == f"my song - {stem}.wav"
        link.click()
        path = _wait_for_file(browser.downloads, f"my song - {stem}.wav")
        stems[stem], stem_rate = sf.read(path)
        assert stem_rate == rate and stems[stem].shape == mixture.shape
    np.testing.assert_allclose(stems["vocals"] + stems["accompaniment"], mixture, atol=2e-4)

    picture = browser.find_element(By.ID, "spectrogram")
    assert picture.is_displayed()
    assert browser.execute_script("return arguments[0].naturalWidth", picture) > 100
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(folder / "serve-done.png"))

    # separating another song resets the page and deletes the finished job
    job_count = len(server.job_folders())
    browser.find_element(By.ID, "again").click()
    WebDriverWait(browser, 10).until(lambda d: _state(d) == "idle")
    end = time.monotonic() + 10
    while len(server.job_folders()) >= job_count and time.monotonic() < end:
        time.sleep(0.1)
    assert len(server.job_folders()) == job_count - 1


def test_a_file_that_is_not_audio_shows_a_readable_error(server, browser, tmp_path):
    text = tmp_path / "notes.mp3"
    text.write_text("not a song\n" * 100)
    browser.get(server.url + "/")
    browser.find_element(By.ID, "file-input").send_keys(str(text))
    WebDriverWait(browser, 30).until(lambda d: _state(d) == "failed")
    message = browser.find_element(By.ID, "error")
    assert message.is_displayed()
    assert "not an audio file" in message.text and "object" not in message.text.lower()
    assert server.alive()
