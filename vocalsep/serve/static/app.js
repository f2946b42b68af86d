// vocalsep's page: upload a song, follow its separation, play it with an adjustable voice level.
"use strict";

const $ = (id) => document.getElementById(id);
const ui = {
  info: $("info"), error: $("error"), drop: $("drop"), fileInput: $("file-input"),
  workName: $("work-name"), status: $("status"), progress: $("progress"),
  resultName: $("result-name"), player: $("player"), play: $("play"), seek: $("seek"),
  time: $("time"), voice: $("voice-level"), voiceLabel: $("voice-label"),
  spectrogram: $("spectrogram"), again: $("again"),
};
const POLL_MS = 500;
let maxBytes = null;  // from /api/info
let job = null;       // {id, name, xhr, timer, failures}
let player = null;    // see setUpPlayer

// ---- messages -------------------------------------------------------------------------

class ApiError extends Error {}

// The server's errors are lower-case sentence fragments: make them a sentence (but leave a
// leading file name such as "song.mp3 is not ..." as it is).
function sentence(text) {
  text = String(text).trim();
  if (!text) return "Something went wrong.";
  const named = job && job.name && text.startsWith(job.name);
  if (!named && /^[a-z]+\b(?![.\w-])/.test(text)) text = text[0].toUpperCase() + text.slice(1);
  return /[.!?]$/.test(text) ? text : text + ".";
}

function readable(error) {
  if (error instanceof ApiError) return error.message;
  if (error instanceof TypeError) return "Could not reach the vocalsep server. Is it still running?";
  return "Something went wrong. Please try again.";
}

function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = !message;
}

function setState(state) {
  document.body.dataset.state = state;
  ui.again.textContent = ["uploading", "queued", "running"].includes(state)
    ? "Cancel" : "Separate another song";
}

function setStatus(text, value) {  // value: 0..1, or null for "busy, amount unknown"
  ui.status.textContent = text;
  if (value === null) ui.progress.removeAttribute("value");
  else ui.progress.value = Math.min(1, Math.max(0, value));
}

function fail(message, status = "The separation did not work.") {
  stopPolling();
  setStatus(status, 0);
  showError(message);
  setState("failed");
  ui.again.focus();
}

async function api(method, url) {
  const response = await fetch(url, { method });
  return jsonOrThrow(response.status, await response.text());
}

function jsonOrThrow(status, body) {
  let data = null;
  try { data = JSON.parse(body); } catch (_) { /* not JSON */ }
  if (status >= 200 && status < 300 && data) return data;
  if (data && typeof data.error === "string") throw new ApiError(sentence(data.error));
  throw new ApiError(`The server answered with an error (HTTP ${status}).`);
}

const megabytes = (bytes) => `${Number((bytes / 2 ** 20).toFixed(1))} MB`;
const baseName = (name) => name.replace(/\.[^.]*$/, "") || name;

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

// ---- info -----------------------------------------------------------------------------

async function loadInfo() {
  try {
    const info = await api("GET", "/api/info");
    maxBytes = info.max_upload_mb * 2 ** 20;
    ui.info.textContent = "";
    const add = (label, value) => {
      if (ui.info.childNodes.length) ui.info.append(" · ");
      const strong = document.createElement("strong");
      strong.textContent = value;
      ui.info.append(label, strong);
    };
    add("Model: ", String(info.model));
    add("Songs up to ", `${info.max_upload_mb} MB`);
    add("Version ", String(info.version));
    ui.info.hidden = false;
  } catch (error) {
    showError(readable(error));
  }
}

// ---- upload and progress --------------------------------------------------------------

function start(file) {
  if (!file || document.body.dataset.state !== "idle") return;
  showError("");
  if (file.size === 0) return showError(`“${file.name}” is empty. Please choose another file.`);
  if (maxBytes !== null && file.size > maxBytes) {
    return showError(`“${file.name}” is ${megabytes(file.size)}; songs can be at most ` +
      `${megabytes(maxBytes)} here. Please choose a smaller file.`);
  }
  job = { id: null, name: file.name, xhr: new XMLHttpRequest(), timer: null, failures: 0 };
  ui.workName.textContent = `“${file.name}”`;
  setState("uploading");
  setStatus("Uploading… 0%", 0);

  const xhr = job.xhr;
  const mine = job;
  xhr.upload.onprogress = (event) => {
    if (!event.lengthComputable) return;
    const part = event.loaded / event.total;
    if (part < 1) setStatus(`Uploading… ${Math.floor(part * 100)}%`, part);
    else setStatus("Checking the file…", null);
  };
  xhr.onload = () => {
    if (job !== mine) return;
    try {
      const data = jsonOrThrow(xhr.status, xhr.responseText);
      job.id = data.id;
      setState("queued");
      setStatus("Waiting to start…", 0);
      poll();
    } catch (error) {
      fail(readable(error), "The song was not accepted.");
    }
  };
  xhr.onerror = () => {
    if (job === mine) fail("Could not reach the vocalsep server. Is it still running?", "The upload failed.");
  };
  xhr.open("POST", "/api/separations");
  const form = new FormData();
  form.append("file", file, file.name);
  xhr.send(form);
}

async function poll() {
  const mine = job;
  let data;
  try {
    data = await api("GET", `/api/separations/${encodeURIComponent(mine.id)}`);
  } catch (error) {
    if (job !== mine) return;
    // A network hiccup may pass; an answer from the server (ApiError) will not.
    if (error instanceof ApiError || ++mine.failures >= 4) return fail(readable(error));
    mine.timer = setTimeout(poll, POLL_MS * 2);
    return;
  }
  if (job !== mine) return;
  mine.failures = 0;
  if (data.name) {
    mine.name = data.name;
    ui.workName.textContent = `“${data.name}”`;
  }
  if (data.status === "queued") {
    setState("queued");
    setStatus(data.position > 0 ? `Waiting in line (${data.position} ahead)` : "Waiting to start…", 0);
  } else if (data.status === "running") {
    setState("running");
    setStatus(`Separating… ${Math.floor((data.progress || 0) * 100)}%`, data.progress || 0);
  } else if (data.status === "done") {
    setStatus("Separated! Loading the player…", 1);
    return finish(data, mine);
  } else {
    return fail(sentence(data.error || "the separation failed"));
  }
  mine.timer = setTimeout(poll, POLL_MS);
}

function stopPolling() {
  if (job && job.timer) clearTimeout(job.timer);
}

// ---- result ---------------------------------------------------------------------------

async function finish(data, mine) {
  const stems = data.stems || {};
  const base = baseName(mine.name);
  ui.resultName.textContent = mine.name;
  for (const stem of ["vocals", "accompaniment"]) {
    const url = stems[stem] || "";
    const flac = url.replace(/\.wav$/, ".flac");
    Object.assign($(`download-${stem}`), { href: url, download: `${base} - ${stem}.wav` });
    Object.assign($(`download-${stem}-flac`), { href: flac, download: `${base} - ${stem}.flac` });
  }
  $("picture").hidden = ui.spectrogram.hidden = !data.spectrogram;
  if (data.spectrogram) ui.spectrogram.src = data.spectrogram;
  else ui.spectrogram.removeAttribute("src");

  let message = "";
  try {
    if (!stems.vocals || !stems.accompaniment) throw new ApiError("This model gives no vocals and accompaniment to play.");
    await setUpPlayer(stems.vocals, stems.accompaniment, mine);
  } catch (error) {
    message = error instanceof ApiError ? error.message : error instanceof TypeError
      ? "The separated audio could not be downloaded. Is the vocalsep server still running?"
      : "This browser could not decode the separated audio.";
    message += " The download links below may still work.";
  }
  if (job !== mine) return;
  ui.player.hidden = Boolean(message);
  showError(message);
  setState("done");
  (message ? $("download-vocals") : ui.play).focus();  // the next step, also for screen readers
}

async function setUpPlayer(vocalsUrl, accompanimentUrl, mine) {
  const context = new AudioContext();
  const load = async (url) => {
    const response = await fetch(url);
    if (!response.ok) jsonOrThrow(response.status, await response.text());
    return context.decodeAudioData(await response.arrayBuffer());
  };
  let buffers;
  try {
    buffers = await Promise.all([load(vocalsUrl), load(accompanimentUrl)]);
  } catch (error) {
    context.close();
    throw error;
  }
  if (job !== mine) return context.close();
  const gains = [context.createGain(), context.createGain()];  // vocals, accompaniment (at 1)
  for (const gain of gains) gain.connect(context.destination);
  gains[0].gain.value = Number(ui.voice.value) / 100;  // no ramp before the first sound
  player = {
    context, buffers, gains, sources: [],
    duration: Math.max(buffers[0].duration, buffers[1].duration),
    playing: false, offset: 0, startedAt: 0, dragging: false,
  };
  ui.seek.max = String(player.duration);
  setVoice();
  updateClock();
}

// Both stems start at the same instant on one context, so they stay sample-synchronous.
function startSources(offset) {
  const p = player;
  stopSources();
  const when = p.context.currentTime + 0.03;
  p.sources = p.buffers.map((buffer, i) => {
    const source = p.context.createBufferSource();
    source.buffer = buffer;
    source.connect(p.gains[i]);
    source.start(when, Math.min(offset, buffer.duration));
    return source;
  });
  const longest = p.sources[p.buffers[0].duration >= p.buffers[1].duration ? 0 : 1];
  longest.onended = () => { if (player === p && p.sources.includes(longest)) ended(); };
  p.startedAt = when - offset;
  p.playing = true;
  requestAnimationFrame(tick);
}

function stopSources() {
  for (const source of player.sources) {
    source.onended = null;
    try { source.stop(); } catch (_) { /* never started */ }
    source.disconnect();
  }
  player.sources = [];
}

function position() {
  const p = player;
  return p.playing ? Math.min(p.duration, Math.max(0, p.context.currentTime - p.startedAt)) : p.offset;
}

function togglePlay() {
  if (!player) return;
  if (player.playing) {
    player.offset = position();
    stopSources();
    player.playing = false;
  } else {
    player.context.resume();
    startSources(player.offset >= player.duration ? 0 : player.offset);
  }
  updateClock();
}

function ended() {
  stopSources();
  Object.assign(player, { playing: false, offset: 0 });
  updateClock();
}

function seekTo(seconds) {
  player.offset = Math.min(player.duration, Math.max(0, seconds));
  if (player.playing) startSources(player.offset);
  updateClock();
}

function tick() {
  if (!player || !player.playing) return;
  updateClock();
  requestAnimationFrame(tick);
}

function updateClock() {
  if (!player) return;
  const now = position();
  if (!player.dragging) ui.seek.value = String(now);
  const shown = player.dragging ? Number(ui.seek.value) : now;
  ui.time.textContent = `${clock(shown)} / ${clock(player.duration)}`;
  ui.seek.setAttribute("aria-valuetext", `${clock(shown)} of ${clock(player.duration)}`);
  ui.play.querySelector(".icon").textContent = player.playing ? "❚❚" : "▶";
  ui.play.querySelector(".text").textContent = player.playing ? "Pause" : "Play";
  document.body.dataset.playing = String(player.playing);
}

function setVoice() {
  const level = Number(ui.voice.value);
  const words = level === 0 ? " (karaoke)" : level === 100 ? " (original)" : "";
  ui.voiceLabel.textContent = `Voice level: ${level}%${words}`;
  ui.voice.setAttribute("aria-valuetext", `${level}%${words}`);
  if (!player) return;
  const gain = level / 100;
  player.gains[0].gain.setTargetAtTime(gain, player.context.currentTime, 0.015);
  document.body.dataset.vocalsGain = String(gain);
}

// ---- starting over --------------------------------------------------------------------

function reset() {
  if (job) {
    stopPolling();
    if (job.xhr) job.xhr.abort();
    if (job.id) fetch(`/api/separations/${encodeURIComponent(job.id)}`, { method: "DELETE" }).catch(() => {});
    job = null;
  }
  if (player) {
    stopSources();
    player.context.close();
    player = null;
  }
  delete document.body.dataset.vocalsGain;
  delete document.body.dataset.playing;
  ui.voice.value = "0";
  setVoice();
  ui.seek.value = "0";
  $("picture").hidden = ui.spectrogram.hidden = true;
  ui.spectrogram.removeAttribute("src");
  ui.fileInput.value = "";
  showError("");
  setStatus("", 0);
  setState("idle");
  ui.fileInput.focus();
}

// ---- wiring ---------------------------------------------------------------------------

ui.fileInput.addEventListener("change", () => start(ui.fileInput.files[0]));
ui.again.addEventListener("click", reset);
ui.play.addEventListener("click", togglePlay);
ui.voice.addEventListener("input", setVoice);
// While the seek slider moves ("input") only the clock follows; the jump is on "change".
ui.seek.addEventListener("input", () => { if (player) { player.dragging = true; updateClock(); } });
ui.seek.addEventListener("change", () => {
  if (player) { player.dragging = false; seekTo(Number(ui.seek.value)); }
});

// Files may be dropped anywhere on the page; the drop zone lights up meanwhile.
let dragDepth = 0;
const carriesFiles = (event) => Array.from(event.dataTransfer?.types || []).includes("Files");
document.addEventListener("dragenter", (event) => {
  if (!carriesFiles(event)) return;
  dragDepth += 1;
  ui.drop.classList.add("over");
});
document.addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (!dragDepth) ui.drop.classList.remove("over");
});
document.addEventListener("dragover", (event) => {
  if (!carriesFiles(event)) return;
  event.preventDefault();
  event.dataTransfer.dropEffect = document.body.dataset.state === "idle" ? "copy" : "none";
});
document.addEventListener("drop", (event) => {
  if (!carriesFiles(event)) return;
  event.preventDefault();
  dragDepth = 0;
  ui.drop.classList.remove("over");
  start(event.dataTransfer.files[0]);
});

setState("idle");
loadInfo();
