"""`vocalsep serve`'s JSON API, over HTTP against a real server process: a song in, stems out,
every kind of bad input answered by a JSON 4xx (and the server serving on), eight uploads at
once, deletion, crashes and cleanup."""

from __future__ import annotations

import io
import os
import signal
import threading
import time

import numpy as np
import pytest
import soundfile as sf
from serving import Server, rss_mb, song

from vocalsep.serve.jobs import DONE, FAILED, QUEUED, JobStore


def test_a_song_becomes_stems_that_add_up_to_it(server, songs):
    info = server.client.get("/api/info").json()
    assert info["model"] == "vocalsep-small" and info["stems"] == ["vocals", "accompaniment"]
    assert info["max_upload_mb"] == 2

    answer = server.upload(songs["short"])
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert job["status"] == "queued" and job["url"] == f"/api/separations/{job['id']}"
    state = server.wait(job["id"])
    assert state["status"] == "done", state
    assert state["name"] == "four seconds.wav" and state["progress"] == 1.0
    assert state["duration"] == pytest.approx(4.0) and state["error"] is None
    mixture, rate = sf.read(songs["short"])
    stems = {}
    for stem, url in state["stems"].items():
        response = server.client.get(url)
        assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
        assert response.headers["x-content-type-options"] == "nosniff"
        stems[stem], stem_rate = sf.read(io.BytesIO(response.content))
        assert stem_rate == rate and stems[stem].shape == mixture.shape
        flac = server.client.get(url.replace(".wav", ".flac"))
        assert flac.headers["content-type"] == "audio/flac"
        np.testing.assert_array_equal(sf.read(io.BytesIO(flac.content))[0], stems[stem])
    # the accompaniment is the residual: the two 16-bit stems add up to the song
    np.testing.assert_allclose(stems["vocals"] + stems["accompaniment"], mixture, atol=2e-4)
    assert np.abs(stems["vocals"]).max() > 0.01  # not all silence
    picture = server.client.get(state["spectrogram"])
    assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")

    assert server.client.delete(job["url"]).json() == {"id": job["id"], "deleted": True}
    assert server.client.get(job["url"]).status_code == 404
    assert server.client.get(state["stems"]["vocals"]).status_code == 404
    assert job["id"] not in server.job_folders()


def _error(response, status: int, words: str) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/json"
    assert words in response.json()["error"].lower(), response.json()


def _chunked_upload(server, path):
    """A multipart upload without a Content-Length (chunked): the limit holds while reading."""
    boundary = "vocalsepboundary"

    def body():
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{path.name}"\r\nContent-Type: audio/wav\r\n\r\n'
        ).encode()
        with open(path, "rb") as file:
            while block := file.read(1 << 16):
                yield block
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    return server.client.post("/api/separations", content=body(), headers=headers)


def test_bad_input_is_a_json_4xx_and_the_server_serves_on(server, songs, tmp_path):
    before = server.job_folders()
    client = server.client
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "song.mp3"
    text.write_text("this is not audio, whatever the name says\n" * 50)
    big = tmp_path / "big.wav"
    song(big, 13.0)  # 2.3 MB: over the 2 MB limit
    cases = [
        (lambda: server.upload(empty), 400, "empty"),
        (lambda: server.upload(text), 415, "not an audio file"),
        (lambda: server.upload(big), 413, "larger than the limit of 2 mb"),
        (lambda: _chunked_upload(server, big), 413, "larger than the limit of 2 mb"),
        (lambda: server.upload(songs["tiny"]), 422, "too short"),
        (lambda: server.upload(songs["short"], field="song"), 400, 'no field named "file"'),
        (lambda: client.post("/api/separations", content=b"RIFF...."), 400, "multipart"),
        (
            lambda: client.post(
                "/api/separations",
                content=b"--x\r\nContent-Disposition: form-data; name=file\r\n\r\nab",
                headers={"content-type": "multipart/form-data; boundary=x"},
            ),
            400,
            "",
        ),
        (lambda: client.get("/api/separations/AAAAAAAAAAAAAAAAAAAAAA"), 404, "no such"),
        (lambda: client.delete("/api/separations/AAAAAAAAAAAAAAAAAAAAAA"), 404, "no such"),
        (lambda: client.get("/api/separations/not-an-id"), 404, "no such"),
        (lambda: client.get("/api/separations/..%2F..%2Fetc%2Fpasswd"), 404, ""),
        (lambda: client.get("/api/separations/%2e%2e/%2e%2e/etc/passwd"), 404, ""),
        (lambda: client.get("/api/separations/..%2Fjobs/input"), 404, ""),
        (lambda: client.get("/static/..%2F..%2F__init__.py"), 404, ""),
        (lambda: client.put("/api/separations"), 405, "not allowed"),
        (lambda: client.get("/api/info", headers={"host": "evil.example"}), 400, "answers only"),
        (lambda: client.get("/", headers={"host": "evil.example:8000"}), 400, "answers only"),
    ]
    for send, status, words in cases:
        response = send()
        if status == 404 and response.headers.get("content-type") != "application/json":
            assert response.status_code == 404, response.text  # the static files' own 404
        else:
            _error(response, status, words)
        assert "Traceback" not in response.text and "/tmp" not in response.text
        assert server.alive()
    # a file name is never a path: a traversal attempt in the name is only a name
    answer = server.upload(songs["short"], name="../../../etc/passwd")
    assert answer.status_code == 202
    state = server.wait(answer.json()["id"])
    assert state["status"] == "done" and state["name"] == "passwd"
    server.client.delete(answer.json()["url"])
    assert server.job_folders() == before  # nothing rejected was kept


def test_an_upload_cut_off_midway_leaves_nothing(server, songs):
    import socket
    from urllib.parse import urlsplit

    before = server.job_folders()
    address = urlsplit(server.url)
    body = songs["medium"].read_bytes()
    head = (
        f"POST /api/separations HTTP/1.1\r\nHost: {address.hostname}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {len(body) + 200}\r\n\r\n"
        '--b\r\nContent-Disposition: form-data; name="file"; filename="x.wav"\r\n\r\n'
    )
    with socket.create_connection((address.hostname, address.port)) as connection:
        connection.sendall(head.encode() + body[: len(body) // 2])
    end = time.monotonic() + 10
    while server.job_folders() != before and time.monotonic() < end:
        time.sleep(0.05)
    assert server.job_folders() == before
    assert server.alive()


def test_a_stem_name_outside_the_job_is_404(server, songs):
    job = server.upload(songs["short"]).json()
    server.wait(job["id"])
    for name in ("drums.wav", "vocals.mp3", "input", "job.json", "..%2Finput", "vocals.wav.."):
        _error(server.client.get(f"{job['url']}/{name}"), 404, "")
    server.client.delete(job["url"])


def test_eight_uploads_at_once_all_finish_with_bounded_memory(server, songs):
    answers = []
    server_rss = [rss_mb(server.process.pid)]

    def send(i: int) -> None:
        answers.append(server.upload(songs["medium"], name=f"song {i}.wav"))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [202] * 8, [a.text for a in answers]
    ids = {a.json()["id"] for a in answers}
    assert len(ids) == 8
    end = time.monotonic() + 300
    while time.monotonic() < end:
        states = [server.client.get(f"/api/separations/{i}").json() for i in ids]
        server_rss.append(rss_mb(server.process.pid))
        if all(s["status"] in ("done", "failed") for s in states):
            break
        time.sleep(0.2)
    assert [s["status"] for s in states] == ["done"] * 8, states
    assert sorted(s["name"] for s in states) == [f"song {i}.wav" for i in range(8)]
    spans = sorted((s["started"], s["finished"]) for s in states)
    assert all(
        end <= next_start for (_, end), (next_start, _) in zip(spans[:-1], spans[1:], strict=True)
    )
    assert all(s["created"] <= s["started"] for s in states)
    assert len(server.workers()) == 1
    # the uploads went to disk and the separations to the worker: the server stays small
    assert max(server_rss) - server_rss[0] < 60, server_rss
    for job_id in ids:
        server.client.delete(f"/api/separations/{job_id}")
    assert server.alive()


def test_a_crashed_worker_fails_its_job_only(server, songs, tmp_path):
    long_song = song(tmp_path / "minute.wav", 11.0)
    job = server.upload(long_song).json()
    after = server.upload(songs["short"]).json()
    end = time.monotonic() + 60
    while server.client.get(job["url"]).json()["status"] != "running":
        assert time.monotonic() < end
        time.sleep(0.02)
    (worker,) = server.workers()
    os.kill(worker, signal.SIGKILL)  # as the kernel's OOM killer would
    state = server.wait(job["id"])
    assert state["status"] == "failed" and "crashed" in state["error"], state
    assert server.wait(after["id"])["status"] == "done"  # the queue goes on, new worker
    assert server.workers() and server.workers() != [worker]
    again = server.upload(songs["short"]).json()
    assert server.wait(again["id"])["status"] == "done"
    for each in (job, after, again):
        server.client.delete(each["url"])


def test_deleting_a_running_job_removes_its_files_when_it_stops(server, tmp_path):
    job = server.upload(song(tmp_path / "long.wav", 11.0)).json()
    while server.client.get(job["url"]).json()["status"] == "queued":
        time.sleep(0.02)
    assert server.client.delete(job["url"]).status_code == 200
    assert server.client.get(job["url"]).status_code == 404
    end = time.monotonic() + 60
    while job["id"] in server.job_folders():
        assert time.monotonic() < end, "the folder of a deleted job stayed"
        time.sleep(0.1)
    assert server.alive()


def test_old_and_oversized_results_are_cleaned_up(tmp_path):
    """A storage limit of 3 MB holds one 6-second result (2.1 MB of stems and a picture) at
    most: finishing a job removes the oldest finished ones; a restart keeps what finished."""
    data = tmp_path / "data"
    server = Server(data, "--max-storage-mb", "3")
    try:
        first = song(tmp_path / "a.wav", 6.0)
        ids = []
        for _ in range(3):
            job = server.upload(first).json()
            assert server.wait(job["id"])["status"] == "done"
            ids.append(job["id"])
        assert server.client.get(f"/api/separations/{ids[0]}").status_code == 404
        assert server.client.get(f"/api/separations/{ids[1]}").status_code == 404
        assert server.client.get(f"/api/separations/{ids[2]}").json()["status"] == "done"
        assert server.job_folders() == [ids[2]]
    finally:
        server.stop()
    again = Server(data)  # a restart lists the finished job again
    try:
        state = again.client.get(f"/api/separations/{ids[2]}").json()
        assert state["status"] == "done" and state["name"] == "a.wav"
        assert again.client.get(state["stems"]["vocals"]).status_code == 200
    finally:
        again.stop()


def test_cleanup_by_age(tmp_path):
    """`JobStore.clean` drops finished jobs past `keep_seconds`, keeps queued/running ones."""
    store = JobStore(tmp_path, keep_seconds=60)
    jobs = []
    for status, age in ((DONE, 120), (FAILED, 90), (DONE, 10), (QUEUED, 500)):
        job = store.new_job("x.wav")
        job.status, job.created = status, time.time() - age
        (job.folder / "input").write_bytes(b"1234")
        store.jobs[job.id] = job
        jobs.append(job)
    assert sorted(store.clean()) == sorted([jobs[0].id, jobs[1].id])
    assert sorted(store.jobs) == sorted([jobs[2].id, jobs[3].id])
    assert not jobs[0].folder.exists() and jobs[3].folder.exists()


def test_loopback_hosts_are_told_apart_from_others():
    from vocalsep.serve.app import is_loopback, request_host

    for header, host in (
        (b"127.0.0.1:8000", "127.0.0.1"),
        (b"localhost", "localhost"),
        (b"[::1]:8000", "::1"),
        (b"LOCALHOST:1", "localhost"),
        (b"evil.example:8000", "evil.example"),
        (b"[::1", ""),
    ):
        assert request_host([(b"host", header)]) == host
    assert is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("evil.example") and not is_loopback("") and not is_loopback("0.0.0.0")


def test_queue_positions_and_the_queue_limit(tmp_path):
    import asyncio

    from vocalsep.serve.jobs import QueueFull

    store = JobStore(tmp_path, max_queue=3)
    store._queue = asyncio.Queue()  # what start() makes; no workers needed here
    jobs = [store.new_job(f"{i}.wav") for i in range(4)]
    for job in jobs[:3]:
        store.submit(job)
    assert [store.position(job) for job in jobs[:3]] == [0, 1, 2]
    with pytest.raises(QueueFull, match="3 songs are waiting"):
        store.submit(jobs[3])
    jobs[0].status = "running"
    assert [store.position(job) for job in jobs[:3]] == [0, 0, 1]


def test_serve_refuses_bad_options_in_one_line(tmp_path):
    import subprocess
    import sys

    for options, words in (
        (["--workers", "0"], "--workers must be at least 1"),
        (["--model", str(tmp_path / "missing.ckpt")], "nor an existing file"),
        (["--port", "-1"], "--port must be at least 0"),
        (["--port", "70000"], "--port must be at most 65535"),
        (["--data-dir", "/proc/no-such-folder"], "cannot keep the jobs' files in"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "vocalsep", "serve", "--data-dir", str(tmp_path), *options],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], result.stderr


def test_without_the_serve_extra_one_line_names_it():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['uvicorn'] = None; from vocalsep.cli import main; "
        "sys.exit(main(['serve']))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1
    expected = 'serve needs uvicorn, which is not installed: pip install "vocalsep[serve]"'
    assert result.stderr.strip() == f"vocalsep: error: {expected}"
