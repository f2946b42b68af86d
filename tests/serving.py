"""A real `vocalsep serve` process on a free port, as a user starts it, and helpers to talk to
it (tests/serve)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
from support import synth, write_wav

RATE = 44100


def song(path: Path, seconds: float, seed: int = 0) -> Path:
    """`support.synth`'s stereo 'song' (vibrato voice, chirp, noise) as a 16-bit WAV."""
    return write_wav(path, synth(RATE, round(seconds * RATE), 2, seed), RATE, "PCM_16")


class Server:
    """`vocalsep serve` in a subprocess; `url` once it listens. Stop with `stop()`."""

    def __init__(self, data_dir: Path, *options: str) -> None:
        self.data_dir = data_dir
        command = [sys.executable, "-m", "vocalsep", "serve", "--port", "0"]
        command += ["--data-dir", str(data_dir), *options]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        line = self.process.stdout.readline()  # printed once the model is loaded
        match = re.search(r"http://\S+/", line)
        if not match:
            self.process.kill()
            raise RuntimeError(f"serve did not start: {line}{self.process.stderr.read()}")
        self.url = match.group(0).rstrip("/")
        self.client = httpx.Client(base_url=self.url, timeout=60)

    def upload(self, path: Path, field: str = "file", name: str | None = None):
        with open(path, "rb") as file:
            return self.client.post(
                "/api/separations", files={field: (name or path.name, file, "audio/wav")}
            )

    def wait(self, job_id: str, timeout: float = 120) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            state = self.client.get(f"/api/separations/{job_id}").json()
            if state["status"] in ("done", "failed"):
                return state
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} did not finish in {timeout} s: {state}")

    def alive(self) -> bool:
        """The server still answers."""
        return self.process.poll() is None and self.client.get("/api/info").status_code == 200

    def job_folders(self) -> list[str]:
        return sorted(p.name for p in (self.data_dir / "jobs").iterdir())

    def workers(self) -> list[int]:
        """Pids of the server's worker processes (its children running multiprocessing)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                cmdline = (stat.parent / "cmdline").read_bytes()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid and b"spawn_main" in cmdline:
                pids.append(int(stat.parent.name))
        return pids

    def stop(self) -> str:
        self.client.close()
        self.process.terminate()
        try:
            _, stderr = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate()
        return stderr


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")
