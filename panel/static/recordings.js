// Replay of a recorded call: waveform (wavesurfer.js, vendored), play/pause,
// speed, and the transcript following the audio.  The word being spoken is
// highlighted; clicking a word (or a segment's time) plays from there.
// The <audio> element is the one clock: wavesurfer draws and seeks it.
// The waveform is drawn from peaks the server computed (/peaks), and the
// audio has preload="none": opening the page fetches no audio, pressing play
// does.  What was heard (audio.played) is reported to the audit log on pause,
// at the end and when the page is left.
"use strict";

(function () {
  const audio = document.getElementById("audio");
  if (!audio) return;
  const playBtn = document.getElementById("play");
  const rate = document.getElementById("rate");
  const pos = document.getElementById("pos");
  const dur = document.getElementById("dur");
  const words = Array.from(document.querySelectorAll("#transcript .w")).map((el) => ({
    el,
    start: parseFloat(el.dataset.start),
    end: parseFloat(el.dataset.end),
  }));
  let current = null;
  let frame = 0;

  function mmss(t) {
    if (!isFinite(t)) return "–:––";
    const s = Math.max(0, Math.floor(t));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = String(s % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
  }

  // the word whose [start, end) holds t, else the last one started before t
  // (a pause between words keeps the previous one lit)
  function wordAt(t) {
    let lo = 0;
    let hi = words.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (words[mid].start <= t + 0.001) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (found < 0) return null;
    const w = words[found];
    return t < w.end + 0.6 ? w : null;
  }

  function highlight() {
    const t = audio.currentTime;
    pos.textContent = mmss(t);
    const w = wordAt(t);
    if (w === current) return;
    if (current) current.el.classList.remove("current");
    current = w;
    if (w) {
      w.el.classList.add("current");
      if (!audio.paused) w.el.scrollIntoView({ block: "nearest" });
    }
  }

  function tick() {
    highlight();
    frame = audio.paused ? 0 : requestAnimationFrame(tick);
  }

  function seek(t, play) {
    audio.currentTime = Math.max(0, t);
    highlight();
    if (play && audio.paused) audio.play().catch(() => {});
  }

  function showState() {
    const playing = !audio.paused;
    playBtn.textContent = (playing ? "❚❚ " : "▶ ") + (playing ? playBtn.dataset.pause : playBtn.dataset.play);
    playBtn.setAttribute("aria-pressed", playing ? "true" : "false");
  }

  // words stay in time order (the server sends segments sorted); keep it safe
  words.sort((a, b) => a.start - b.start);

  audio.addEventListener("timeupdate", highlight);
  audio.addEventListener("seeked", highlight);
  audio.addEventListener("play", () => {
    showState();
    if (!frame) frame = requestAnimationFrame(tick);
  });
  audio.addEventListener("pause", () => {
    showState();
    report();
  });
  audio.addEventListener("ended", () => {
    showState();
    report();
  });
  audio.addEventListener("loadedmetadata", () => {
    dur.textContent = mmss(audio.duration);
  });
  // a link to a moment: before any audio is loaded this sets where play starts
  const start = parseFloat(audio.dataset.seek || "0");
  if (start > 0) seek(start, false);

  // the ranges heard, as [[from, to], ...], sent when they grew
  const csrf = document.querySelector("meta[name=csrf-token]");
  let reported = "";
  function report() {
    const ranges = [];
    for (let i = 0; i < audio.played.length; i++) {
      const a = Math.round(audio.played.start(i) * 10) / 10;
      const b = Math.round(audio.played.end(i) * 10) / 10;
      if (b > a) ranges.push([a, b]);
    }
    const body = JSON.stringify({ s: audio.dataset.session, ranges: ranges.slice(0, 50) });
    if (!ranges.length || body === reported) return;
    reported = body;
    fetch(audio.dataset.heard, {
      method: "POST",
      keepalive: true,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf ? csrf.content : "" },
      body,
    }).catch(() => {});
  }
  window.addEventListener("pagehide", report);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") report();
  });
  audio.addEventListener("error", () => {
    document.getElementById("audio-error").hidden = false;
  });

  playBtn.addEventListener("click", () => {
    if (audio.paused) audio.play().catch(() => {});
    else audio.pause();
  });
  document.getElementById("back5").addEventListener("click", () => seek(audio.currentTime - 5, false));
  document.getElementById("fwd5").addEventListener("click", () => seek(audio.currentTime + 5, false));
  rate.addEventListener("change", () => {
    audio.playbackRate = parseFloat(rate.value) || 1;
  });

  const transcript = document.getElementById("transcript");
  if (transcript) {
    transcript.addEventListener("click", (ev) => {
      const target = ev.target.closest(".w, .at");
      if (!target) return;
      ev.preventDefault();
      seek(parseFloat(target.dataset.start), true);
    });
  }

  document.addEventListener("keydown", (ev) => {
    if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
    if (ev.target.closest("input, select, textarea, button, a")) return;
    if (ev.key === " ") {
      ev.preventDefault();
      playBtn.click();
    } else if (ev.key === "ArrowLeft") {
      seek(audio.currentTime - 5, false);
    } else if (ev.key === "ArrowRight") {
      seek(audio.currentTime + 5, false);
    }
  });

  // quality grading: the graders' comments as markers on the timeline (a click seeks
  // there), the comment list's times, and the comment form taking the current position
  const markers = Array.from(document.querySelectorAll("#qa-markers .qa-marker"));
  function placeMarkers(duration) {
    if (!isFinite(duration) || duration <= 0) return;
    for (const m of markers) {
      const at = parseFloat(m.dataset.at);
      m.style.left = `${Math.min(100, Math.max(0, (100 * at) / duration))}%`;
      m.hidden = false;
    }
    const box = document.getElementById("qa-markers");
    if (box) box.dataset.placed = "yes";
  }
  for (const m of markers) {
    m.hidden = true;
    m.addEventListener("click", (ev) => {
      ev.preventDefault();
      seek(parseFloat(m.dataset.at), false);
    });
  }
  audio.addEventListener("loadedmetadata", () => placeMarkers(audio.duration));
  const comments = document.getElementById("qa-comments");
  if (comments) {
    comments.addEventListener("click", (ev) => {
      const target = ev.target.closest(".at");
      if (!target) return;
      ev.preventDefault();
      seek(parseFloat(target.dataset.start), false);
    });
  }
  const commentForm = document.getElementById("qa-comment-form");
  if (commentForm) {
    const at = document.getElementById("qa-at");
    const label = document.getElementById("qa-at-label");
    const show = () => {
      at.value = audio.currentTime.toFixed(2);
      label.textContent = mmss(audio.currentTime);
    };
    audio.addEventListener("timeupdate", show);
    audio.addEventListener("seeked", show);
    commentForm.addEventListener("submit", show);
    show();
  }

  // the waveform: peaks from the server (no audio fetched), playing through our <audio>
  const waveform = document.getElementById("waveform");
  function drawWaveform(data) {
    dur.textContent = mmss(data.duration);
    placeMarkers(data.duration);
    const style = getComputedStyle(document.documentElement);
    const ws = window.WaveSurfer.create({
      container: "#waveform",
      media: audio,
      height: 72,
      waveColor: style.getPropertyValue("--wave").trim() || "#9db7d3",
      progressColor: style.getPropertyValue("--accent").trim() || "#0b5cad",
      cursorColor: "#b3261e",
      barWidth: 2,
      barGap: 1,
      normalize: true,
      dragToSeek: true,
      peaks: [data.peaks],
      duration: data.duration,
    });
    ws.on("error", () => waveform.classList.add("failed"));
    ws.on("ready", () => {
      waveform.dataset.ready = "yes";
    });
  }
  if (window.WaveSurfer) {
    waveform.dataset.ready = "loading";
    fetch(waveform.dataset.peaks, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error(String(r.status)))))
      .then(drawWaveform)
      .catch(() => waveform.classList.add("failed"));
  }
})();
