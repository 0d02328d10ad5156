// The agent's live screen: state and screen-pop over one WebSocket.
// Everything shown comes in as JSON and is put on the page with textContent
// (never innerHTML), so a caller name cannot inject markup.
"use strict";

(function () {
  const $ = (sel) => document.querySelector(sel);
  const text = (el, value) => { if (el) el.textContent = value == null ? "" : String(value); };

  // Levels: show the guidance box for level 1 and the agency for 2 and 3.
  function levelFields() {
    const form = $("#ticket-form");
    if (!form) return;
    const update = () => {
      const level = (form.querySelector("input[name=level]:checked") || {}).value || "";
      form.querySelectorAll("[data-level]").forEach((el) => {
        el.hidden = level !== "" && !el.dataset.level.split(" ").includes(level);
      });
    };
    form.addEventListener("change", update);
    update();
  }

  // Translated labels come from <template> elements the server rendered.
  function names(templateId, selector, attr) {
    const out = {};
    const tpl = document.getElementById(templateId);
    if (!tpl) return out;
    tpl.content.querySelectorAll(selector).forEach((el) => { out[el.dataset[attr]] = el.textContent; });
    return out;
  }

  function showState(state) {
    if (!state) return;
    const label = $("#state-label");
    if (!label) return;
    const stateNames = names("state-names", "span[data-s]", "s");
    const reasonNames = names("state-names", "span[data-r]", "r");
    label.className = "state-badge st-" + state.state;
    text(label, stateNames[state.state] || state.state);
    text($("#state-reason"), state.paused ? (reasonNames[state.reason] || state.reason) : "");
  }

  function list(ul, items, render) {
    ul.replaceChildren();
    if (!items || !items.length) {
      const li = document.createElement("li");
      text(li, ul.dataset.empty);
      ul.append(li);
      return;
    }
    for (const item of items) ul.append(render(item));
  }

  function when(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return d.toLocaleString(document.body.dataset.lang === "vi" ? "vi-VN" : "en-GB",
      { timeZone: "Asia/Ho_Chi_Minh", dateStyle: "short", timeStyle: "short" });
  }

  // A wait in seconds as people say it: "45 s", "12 min", "2 h 05 min".
  function duration(seconds, el) {
    if (seconds == null) return "—";
    if (seconds < 120) return seconds + " " + el.dataset.unit;
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + " " + el.dataset.min;
    return Math.floor(minutes / 60) + " " + el.dataset.hour + " " +
      String(minutes % 60).padStart(2, "0") + " " + el.dataset.min;
  }

  // The pop's identifiers in words: IVR steps, outcomes, hotline numbers, from the
  // table the server put in the page (#pop-words; panel/labels.py pop_words, whose
  // path_words does the same lookup).
  let popWords = null;
  function words() {
    if (popWords === null) {
      const el = document.getElementById("pop-words");
      try { popWords = el ? JSON.parse(el.textContent) : {}; } catch (e) { popWords = {}; }
    }
    return popWords;
  }
  function menuWords(hotline, path) {
    if (!path) return "";
    const steps = words().steps || {};
    const own = steps[hotline || ""] || {}, common = steps[""] || {};
    return path.split(" > ").map((raw) => {
      const step = raw.trim();
      const m = /^(.*?)(\d+)$/.exec(step);
      const numbered = m && common[m[1] + "#"];
      return own[step] || common[step] || (numbered ? numbered.replace("{n}", m[2]) : step);
    }).join(words().separator || " > ");
  }
  const outcomeWord = (o) => (words().outcomes || {})[o] || o || "";
  const hotlineName = (n) => (words().hotlines || {})[n] || n || "";

  let current = null;
  const pageTitle = document.title;

  function showPop(pop) {
    const card = $("#pop");
    if (!card) return;
    if (!pop) { card.hidden = true; current = null; document.title = pageTitle; return; }
    current = pop.uniqueid;
    // a callback (the system rang this agent to call a citizen back) pops as a
    // queue call does, with what the agent needs to know about the callback
    const cb = pop.kind === "callback" ? (pop.callback || {}) : null;
    const phase = pop.phase || "ringing";
    card.hidden = false;
    card.className = "card pop " + phase + (cb ? " callback" : "");
    const title = $("#pop-title");
    const key = cb ? "cb" + phase.charAt(0).toUpperCase() + phase.slice(1) : phase;
    text(title, title.dataset[key] || title.dataset.ringing);
    $("#pop-kind").hidden = !cb;
    const field = (name) => card.querySelector(`[data-f="${name}"]`);
    const only = (name, shown) => card.querySelectorAll(`[data-only="${name}"]`).forEach((el) => { el.hidden = !shown; });
    const caller = field("caller");
    text(caller, pop.caller || caller.dataset.none);
    text(field("hotline"), [pop.hotline, pop.hotline_name].filter(Boolean).join(" · "));
    const ivr = field("ivr_path");
    text(ivr, pop.route_source === "fallback" && !pop.ivr_path ? ivr.dataset.fallback : menuWords(pop.hotline, pop.ivr_path));
    const waited = field("waited");
    text(waited, duration(pop.waited, waited));
    only("callback", !!cb);
    const voice = cb && cb.voice_message;
    only("voice", !!voice);
    const audio = $("#pop-voice");
    if (audio && !voice && !audio.paused) audio.pause();
    const result = phase === "ended" && cb && pop.result;
    only("result", !!result);
    if (cb) {
      text(field("requested_at"), when(cb.requested_at));
      text(field("queued_at"), when(pop.queued_at));
      const attempt = field("attempt");
      text(attempt, attempt.dataset.text.replace("{n}", cb.attempt).replace("{total}", cb.attempts));
      if (voice) {
        // the panel's own audio route: it checks who may listen, as on /callbacks
        if (audio.getAttribute("src") !== voice.url) audio.src = voice.url;
        $("#pop-voice-link").href = voice.url;
      }
      if (result) {
        const resultNames = names("result-names", "span[data-r]", "r");
        text(field("result"), resultNames[pop.result] || pop.result);
      }
    }
    const statusNames = names("status-names", "span[data-s]", "s");
    list($("#pop-tickets"), pop.tickets, (t) => {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = "/tickets/" + encodeURIComponent(t.code);
      text(a, t.code);
      li.append(a, " " + when(t.created_at) + " · " + (statusNames[t.status] || t.status) + " · " + (t.summary || ""));
      return li;
    });
    list($("#pop-calls"), pop.earlier_calls, (c) => {
      const li = document.createElement("li");
      text(li, when(c.started_at) + " · " + hotlineName(c.hotline) + " · " + outcomeWord(c.outcome) + (c.agent ? " · " + c.agent : ""));
      return li;
    });
    // Link the ticket form to this call, and prefill the number, unless the
    // agent already typed one for another purpose.
    const callId = $("#f-call_id");
    if (callId && pop.call_id != null) {
      callId.value = pop.call_id;
      $("#f-linked").hidden = false;
      // the number follows the call unless the agent typed one of their own
      const phone = $("#f-citizen_phone");
      if (phone && (!phone.value || phone.value === phone.dataset.auto)) {
        phone.value = pop.caller || "";
        phone.dataset.auto = phone.value;
      }
    }
    // a ringing call in a background tab shows in the tab's title, until answered
    document.title = pop.phase === "ringing" ? "☎ " + (pop.caller || "…") + " · " + pageTitle : pageTitle;
  }

  // Supervisors and agencies: a ticket past its deadline is announced at once.
  function showAlert(msg) {
    const box = $("#live-alerts");
    if (!box || msg.type !== "overdue") return;
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = "/tickets/" + encodeURIComponent(msg.code);
    text(a, box.dataset.overdue.replace("{code}", msg.code).replace("{agency}", msg.agency || "—"));
    li.append(a);
    box.prepend(li);
    box.hidden = false;
  }

  // The agent who created a ticket: the agency answered it or sent it back.
  function showNotice(msg) {
    const box = $("#live-notices");
    const template = box && box.dataset[msg.action];
    if (!template) return;
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = "/tickets/" + encodeURIComponent(msg.code);
    text(a, template.replace("{code}", msg.code));
    li.append(a);
    box.prepend(li);
    box.hidden = false;
  }

  function connect() {
    const status = $("#ws-status");
    if (!status && !document.querySelector("[data-live]")) return;
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(proto + location.host + "/ws");
    window.hotlineSocket = ws;
    ws.onopen = () => {
      if (status) { text(status, status.dataset.ok); status.dataset.state = "open"; }
    };
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      window.hotlineLast = msg;
      if (msg.type === "hello") { showState(msg.state); showPop(msg.pop); }
      else if (msg.type === "state") showState(msg);
      else if (msg.type === "pop") showPop(msg);
      else if (msg.type === "pop_gone" && msg.uniqueid === current) showPop(null);
      else if (msg.type === "overdue") showAlert(msg);
      else if (msg.type === "ticket") showNotice(msg);
      document.dispatchEvent(new CustomEvent("hotline:" + msg.type, { detail: msg }));
    };
    ws.onclose = () => {
      if (status) { text(status, status.dataset.lost); status.dataset.state = "lost"; }
      setTimeout(connect, 1500);
    };
  }

  document.addEventListener("DOMContentLoaded", () => {
    levelFields();
    connect();
  });
})();
