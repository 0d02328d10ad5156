// The supervisors' live board (/board) and the wallboard (/board/wall).
//
// panel.js owns the WebSocket (and reconnects it for ever); this file listens
// to the events it re-dispatches: "hotline:hello" (a fresh connection: read
// the whole picture again from /board/live.json), "hotline:queue" (one
// queue changed: only that queue's block is touched) and
// "hotline:congestion".  Waits and times in state tick in the browser, on
// the server's clock (the skew is measured at each load).  Text goes in with
// textContent only.  Today's figures and the charts come from
// /board/figures.json every minute; that request also keeps the session
// alive, and when the session is gone the page goes to the sign-in form.
"use strict";

(function () {
  const board = document.getElementById("board");
  if (!board) return;
  const wall = document.body.classList.contains("wall");
  const WALL_WAITING = 8; // callers listed per queue on the TV (the count shows all)
  const FIGURES_EVERY = 60_000;
  const WALL_RELOAD_EVERY = 6 * 3600_000; // fresh code and memory on an unattended TV

  const text = (el, value) => { if (el) el.textContent = value == null ? "" : String(value); };
  const fmt = (template, values) => template.replace(/\{(\w+)\}/g, (m, k) => (k in values ? values[k] : m));

  const names = { s: {}, r: {}, c: {}, t: {} };
  const tpl = document.getElementById("board-names");
  if (tpl) {
    tpl.content.querySelectorAll("span").forEach((el) => {
      for (const kind of Object.keys(names)) {
        if (el.dataset[kind]) names[kind][el.dataset[kind]] = el.textContent;
      }
    });
  }

  const blocks = new Map(); // queue name -> {el, waiting: Map(uniqueid -> li), members: Map(ext -> li), state}
  board.querySelectorAll(".queue-block").forEach((el) => {
    blocks.set(el.dataset.queue, { el, waiting: new Map(), members: new Map(), state: null });
  });

  let skew = 0; // server time - browser time, ms
  const now = () => Date.now() + skew;

  function duration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
  }

  const tz = board.dataset.tz || "Asia/Ho_Chi_Minh";
  const lang = document.body.dataset.lang === "en" ? "en-GB" : "vi-VN";
  const hhmm = new Intl.DateTimeFormat("en-GB", { timeZone: tz, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  const clockFmt = new Intl.DateTimeFormat(lang, { timeZone: tz, weekday: "short", day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
  const localTime = (iso) => hhmm.format(new Date(iso));

  function minutes(hm) { const [h, m] = hm.split(":").map(Number); return h * 60 + m; }
  function onDuty(block) {
    const [h, m] = hhmm.format(new Date(now())).split(":").map(Number);
    const t = h * 60 + m;
    const start = minutes(block.el.dataset.start);
    const end = minutes(block.el.dataset.end);
    return start < end ? start <= t && t < end : t >= start || t < end;
  }

  // -- one queue's block ------------------------------------------------
  function emptyNote(list, empty) {
    let note = list.querySelector("li.empty");
    if (empty && !note) {
      note = document.createElement("li");
      note.className = "empty";
      text(note, list.dataset.empty);
      list.append(note);
    } else if (!empty && note) note.remove();
  }

  // Keep one <li> per item (keyed): a caller joining a queue of 100 adds one
  // element and moves none of the others' content.
  function keyed(list, map, items, key, make, fill) {
    const seen = new Set();
    let before = list.firstElementChild;
    for (const item of items) {
      const k = key(item);
      seen.add(k);
      let li = map.get(k);
      if (!li) { li = make(item); map.set(k, li); }
      fill(li, item);
      if (li !== before) list.insertBefore(li, before);
      else before = before.nextElementSibling;
    }
    for (const [k, li] of map) {
      if (!seen.has(k)) { li.remove(); map.delete(k); }
    }
    emptyNote(list, items.length === 0);
  }

  // Listen / whisper / barge on a talking agent: the JSON API rings the
  // supervisor's own phone into the call; its answer (or refusal) is shown.
  const csrf = document.querySelector("meta[name=csrf-token]");
  const notice = document.getElementById("supervise-status");
  const MODES = ["listen", "whisper", "barge"];
  function superviseButtons() {
    const span = document.createElement("span");
    span.className = "supervise";
    span.hidden = true;
    for (const mode of MODES) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "small";
      b.dataset.mode = mode;
      text(b, board.dataset["mode" + mode[0].toUpperCase() + mode.slice(1)] || mode);
      span.append(b);
    }
    return span;
  }
  board.addEventListener("click", async (ev) => {
    const b = ev.target.closest(".supervise button");
    if (!b) return;
    const ext = b.closest("li").dataset.extension;
    b.disabled = true;
    try {
      const r = await fetch(`/api/v1/agents/${encodeURIComponent(ext)}/supervise`, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf ? csrf.content : "" },
        body: JSON.stringify({ mode: b.dataset.mode }),
      });
      const answer = await r.json().catch(() => ({}));
      text(notice, r.ok ? fmt(board.dataset.ringing, { ext }) : answer.error || r.statusText);
      if (notice) notice.dataset.ok = r.ok ? "1" : "0";
    } finally {
      b.disabled = false;
    }
  });

  function renderQueue(name, state) {
    const b = blocks.get(name);
    if (!b) return; // a queue this configuration does not know (e.g. before a reload)
    b.state = state || { waiting: [], members: [] };
    const waiting = b.state.waiting || [];
    const members = b.state.members || [];
    const el = b.el;
    const shown = wall ? waiting.slice(0, WALL_WAITING) : waiting;
    keyed(el.querySelector("ol.waiting"), b.waiting, shown, (c) => c.uniqueid,
      () => {
        const li = document.createElement("li");
        const who = document.createElement("span");
        who.className = "who";
        const wait = document.createElement("span");
        wait.className = "wait";
        li.append(who, " ", wait);
        return li;
      },
      (li, c) => {
        text(li.firstChild, c.caller || board.dataset.withheld);
        li.dataset.since = c.since;
        text(li.lastChild, duration(now() - Date.parse(c.since)));
      });
    const more = el.querySelector("p.more");
    more.hidden = waiting.length <= shown.length;
    text(more, fmt(board.dataset.more, { n: waiting.length - shown.length }));

    keyed(el.querySelector("ul.members"), b.members, members, (m) => m.extension,
      () => {
        const li = document.createElement("li");
        const who = document.createElement("span");
        who.className = "who";
        const badge = document.createElement("span");
        const why = document.createElement("span");
        why.className = "why";
        const since = document.createElement("span");
        since.className = "since";
        li.append(who, " ", badge, " ", why, " ", since);
        if (!wall) li.append(" ", superviseButtons());
        return li;
      },
      (li, m) => {
        const [who, badge, why, since] = li.querySelectorAll("span");
        li.dataset.extension = m.extension;
        const tools = li.querySelector(".supervise");
        if (tools) tools.hidden = m.state !== "talking";
        text(who, `${m.name || ""} (${m.extension})`);
        badge.className = "state-badge st-" + m.state;
        text(badge, names.s[m.state] || m.state);
        text(why, m.state === "paused" && m.reason ? names.r[m.reason] || m.reason : "");
        li.dataset.state = m.state;
        li.dataset.since = m.since;
        text(since, duration(now() - Date.parse(m.since)));
      });

    const count = (states) => members.filter((m) => states.includes(m.state)).length;
    text(el.querySelector("[data-k=waiting]"), waiting.length);
    text(el.querySelector("[data-k=free]"), count(["free"]));
    text(el.querySelector("[data-k=busy]"), count(["ringing", "talking", "wrapup"]));
    text(el.querySelector("[data-k=paused]"), count(["paused"]));
    el.dataset.waiting = waiting.length;
    el.classList.toggle("has-waiting", waiting.length > 0);
    tickQueue(b);
    duty(b);
  }

  function tickQueue(b) {
    const el = b.el;
    const t = now();
    el.querySelectorAll("ol.waiting li[data-since] .wait, ul.members li[data-since] .since").forEach((span) => {
      text(span, duration(t - Date.parse(span.parentNode.dataset.since)));
    });
    const first = (b.state && b.state.waiting) || [];
    const oldest = first.reduce((min, c) => Math.min(min, Date.parse(c.since)), Infinity);
    text(el.querySelector("[data-k=longest]"), oldest === Infinity ? "0:00" : duration(t - oldest));
  }

  function duty(b) {
    const on = onDuty(b);
    const s = b.state || {};
    const busy = (s.waiting || []).length > 0 || (s.members || []).length > 0;
    b.el.classList.toggle("on-duty", on);
    b.el.classList.toggle("idle", !on && !busy);
    const d = b.el.querySelector(".duty");
    text(d, on ? d.dataset.on : d.dataset.off);
  }

  // -- congestion ---------------------------------------------------------
  // An alarm is in force once raised, and stays so when a reason is added to
  // it ("escalated": the message carries all its reasons); "cleared" ends it.
  const alarms = new Map(); // queue -> message
  const inForce = (msg) => msg.state === "raised" || msg.state === "escalated";
  const reasonText = (reasons) => (reasons || []).map((r) => names.c[r] || r).join("; ");
  function showAlarm(msg) {
    if (inForce(msg)) alarms.set(msg.queue, msg);
    else alarms.delete(msg.queue);
    const b = blocks.get(msg.queue);
    if (b) {
      const p = b.el.querySelector("p.alarm");
      const on = inForce(msg);
      b.el.classList.toggle("congested", on);
      p.hidden = !on;
      if (on) {
        // since the alarm went up, not since its last reason
        const since = fmt(board.dataset.since, { time: localTime(msg.since || msg.at) });
        text(p, `${names.t.congested}: ${reasonText(msg.reasons)} (${since})`);
      }
    }
    const banner = document.getElementById("congestion-banner");
    banner.replaceChildren();
    for (const [queue, m] of alarms) {
      const li = document.createElement("li");
      const label = blocks.has(queue) ? blocks.get(queue).el.dataset.label : queue;
      text(li, `${names.t.congested} — ${label}: ${reasonText(m.reasons)}`);
      banner.append(li);
    }
    banner.hidden = alarms.size === 0;
  }

  // -- the whole picture, at each (re)connection -------------------------
  let pending = null; // messages that arrive while the picture loads
  async function load() {
    if (pending) return;
    pending = [];
    try {
      const r = await fetch("/board/live.json", { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (signedOut(r)) return;
      if (!r.ok) throw new Error("HTTP " + r.status);
      const data = await r.json();
      skew = Date.parse(data.at) - Date.now();
      for (const name of blocks.keys()) renderQueue(name, data.queues[name]);
      for (const q of Array.from(alarms.keys())) if (!data.alarms[q]) showAlarm({ queue: q, state: "cleared" });
      for (const m of Object.values(data.alarms)) showAlarm(m);
      board.dataset.loaded = "1";
    } catch (e) {
      setTimeout(() => { if (window.hotlineSocket && window.hotlineSocket.readyState === 1) load(); }, 3000);
    } finally {
      const queued = pending || [];
      pending = null;
      queued.forEach(apply);
    }
  }

  function apply(msg) {
    if (pending) { pending.push(msg); return; }
    if (msg.type === "queue") renderQueue(msg.queue, msg.state);
    else if (msg.type === "congestion") { showAlarm(msg); soon(); }
  }

  function signedOut(r) {
    if (r.status === 401 || (r.redirected && new URL(r.url).pathname === "/login")) {
      location.assign("/login?next=" + encodeURIComponent(location.pathname));
      return true;
    }
    return false;
  }

  document.addEventListener("hotline:hello", load);
  document.addEventListener("hotline:queue", (e) => apply(e.detail));
  document.addEventListener("hotline:congestion", (e) => apply(e.detail));

  // -- today's figures and the charts -------------------------------------
  const charts = {};
  function chart(id, config) {
    const canvas = document.getElementById(id);
    if (!canvas || typeof window.Chart === "undefined") return null;
    if (wall) { window.Chart.defaults.color = "#fff"; window.Chart.defaults.borderColor = "#555"; }
    if (!charts[id]) charts[id] = new window.Chart(canvas, config);
    return charts[id];
  }

  function drawCharts(hours) {
    const labels = hours.map((h) => String(h.hour).padStart(2, "0") + "h");
    const big = wall ? 22 : 12;
    const common = {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      plugins: { legend: { labels: { font: { size: big } } } },
    };
    const calls = document.getElementById("chart-calls");
    const c = chart("chart-calls", {
      type: "bar",
      data: {
        labels,
        datasets: [
          { label: calls.dataset.answered, data: [], backgroundColor: "#1d7a3e" },
          { label: calls.dataset.abandoned, data: [], backgroundColor: "#b3261e" },
          { label: calls.dataset.timedOut, data: [], backgroundColor: "#a85d00" },
        ],
      },
      options: { ...common, scales: { x: { stacked: true, ticks: { font: { size: big } } }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0, font: { size: big } } } } },
    });
    if (c) {
      c.data.labels = labels;
      c.data.datasets[0].data = hours.map((h) => h.answered);
      c.data.datasets[1].data = hours.map((h) => h.abandoned);
      c.data.datasets[2].data = hours.map((h) => h.timed_out);
      c.update("none");
    }
    const slCanvas = document.getElementById("chart-sl");
    const sl = chart("chart-sl", {
      type: "line",
      data: {
        labels,
        datasets: [
          { label: slCanvas.dataset.label, data: [], borderColor: "#0b5cad", backgroundColor: "#0b5cad", spanGaps: false },
          { label: slCanvas.dataset.abandon, data: [], borderColor: "#b3261e", backgroundColor: "#b3261e", spanGaps: false },
        ],
      },
      options: { ...common, scales: { x: { ticks: { font: { size: big } } }, y: { min: 0, max: 100, ticks: { callback: (v) => v + " %", font: { size: big } } } } },
    });
    if (sl) {
      sl.data.labels = labels;
      sl.data.datasets[0].data = hours.map((h) => h.service_level);
      sl.data.datasets[1].data = hours.map((h) => h.abandon_rate);
      sl.update("none");
    }
  }

  const pct = (v) => (v == null ? "—" : v + " %");
  const num = (v) => (v == null ? "—" : String(v));

  // the table's columns: their keys in figures.json's rows, from the page's header
  const columns = [...document.querySelectorAll("#today-figures thead th[data-k]")].map((th) => th.dataset.k);

  function figureCells(tr, label, f) {
    tr.replaceChildren();
    for (const v of [label, ...columns.map((k) => num(f[k]))]) {
      const td = document.createElement("td");
      text(td, v);
      tr.append(td);
    }
  }

  function showFigures(data) {
    const table = document.getElementById("today-figures");
    const body = table.querySelector("tbody");
    body.replaceChildren();
    for (const f of Object.values(data.queues)) {
      const tr = document.createElement("tr");
      figureCells(tr, f.label, f);
      body.append(tr);
    }
    const foot = table.querySelector("tfoot tr");
    figureCells(foot, foot.dataset.total, data.total);
    for (const [name, b] of blocks) {
      const f = data.queues[name];
      text(b.el.querySelector("[data-k=today]"), f ? fmt(board.dataset.today, { offered: f.offered, answered: f.answered, abandoned: f.abandoned + f.timed_out }) : "");
      text(b.el.querySelector("[data-k=service_level]"), f ? pct(f.service_level) : "—");
      text(b.el.querySelector("[data-k=abandon_rate]"), f ? pct(f.abandon_rate) : "—");
    }
    const log = document.getElementById("alarm-log");
    log.replaceChildren();
    for (const a of data.alarms) {
      const li = document.createElement("li");
      li.dataset.state = a.state;
      // each row names what it announced: an escalation its new reasons only
      const why = reasonText(a.state === "cleared" ? [] : a.added);
      text(li, `${localTime(a.at)} ${a.label}: ${log.dataset[a.state] || a.state}${why ? " — " + why : ""}`);
      log.append(li);
    }
    if (!data.alarms.length) { const li = document.createElement("li"); li.className = "empty"; text(li, log.dataset.empty); log.append(li); }
    drawCharts(data.hourly);
    board.dataset.figures = data.at;
  }

  // an alarm raised, escalated or cleared belongs in today's log now, not at the next round
  let soonTimer = null;
  function soon() {
    clearTimeout(soonTimer);
    soonTimer = setTimeout(figures, 1000);
  }

  async function figures() {
    try {
      const r = await fetch("/board/figures.json", { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (signedOut(r) || !r.ok) return;
      showFigures(await r.json());
    } catch (e) {
      // the panel is restarting: the next round will do
    }
  }

  // -- the clocks --------------------------------------------------------------
  setInterval(() => {
    for (const b of blocks.values()) { tickQueue(b); duty(b); }
    text(document.getElementById("wall-clock"), clockFmt.format(new Date(now())));
  }, 1000);
  setInterval(figures, FIGURES_EVERY);
  document.addEventListener("DOMContentLoaded", figures);

  if (wall) {
    // Reload now and then, but only when the panel answers: a failed reload
    // would leave the TV on the browser's error page for good.
    setInterval(async () => {
      try {
        const r = await fetch(location.pathname, { credentials: "same-origin" });
        if (r.ok && !r.redirected) location.reload();
      } catch (e) { /* try at the next round */ }
    }, WALL_RELOAD_EVERY);
  }
})();
