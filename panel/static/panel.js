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

  // -- the call on screen: the pop (workspace), the call bar (every agent page) --
  let current = null;  // the pop shown, as the server sent it
  let skew = 0;  // this PC's clock minus the server's, in seconds
  const callTickets = new Map();  // call id -> the tickets made on that call so far
  const pageTitle = document.title;

  function serverTime(t) { if (typeof t === "number") skew = Date.now() / 1000 - t; }

  // m:ss (h:mm:ss past the hour)
  function clock(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = String(s % 60).padStart(2, "0");
    return h ? h + ":" + String(m).padStart(2, "0") + ":" + r : m + ":" + r;
  }

  // Ringing: how long it has rung; talking: since answered; ended: how long it lasted.
  function callTime(pop) {
    if (!pop) return "";
    const now = Date.now() / 1000 - skew;
    const phase = pop.phase || "ringing";
    if (phase === "ended") return pop.answered_at && pop.ended_at ? clock(pop.ended_at - pop.answered_at) : "";
    const since = phase === "talking" ? (pop.answered_at || pop.event_at || pop.sent) : (pop.event_at || pop.sent);
    return since ? clock(now - since) : "";
  }

  function tick() {
    const shown = callTime(current);
    document.querySelectorAll("[data-timer]").forEach((el) => { if (el.textContent !== shown) text(el, shown); });
  }

  function phaseWord(box, pop) {
    const phase = pop.phase || "ringing";
    // a callback's words start "cb", a call the agent placed from a ticket's "out"
    const prefix = { callback: "cb", outbound: "out" }[pop.kind];
    const key = prefix ? prefix + phase.charAt(0).toUpperCase() + phase.slice(1) : phase;
    return box.dataset[key] || box.dataset.ringing;
  }

  function ticketLinks(el, tickets) {
    el.replaceChildren();
    tickets.forEach((t, i) => {
      const a = document.createElement("a");
      a.href = "/tickets/" + encodeURIComponent(t.code);
      text(a, t.number ? t.code + " · " + t.number : t.code);
      el.append(i ? ", " : "", a);
    });
  }

  // The bar under the header: the same height with or without a call.
  function showBar(pop) {
    const bar = $("#callbar");
    if (!bar) return;
    const phase = pop ? pop.phase || "ringing" : "idle";
    bar.className = "callbar " + phase + (pop && (pop.kind === "callback" || pop.kind === "outbound") ? " " + pop.kind : "");
    text($("#callbar-phase"), pop ? phaseWord(bar, pop) : bar.dataset.idle);
    text($("#callbar-caller"), pop ? pop.caller || bar.dataset.none : "");
    const tickets = (pop && callTickets.get(pop.call_id)) || [];
    const box = $("#callbar-tickets");
    if (box) {
      box.replaceChildren();
      if (tickets.length) {
        const links = document.createElement("span");
        ticketLinks(links, tickets);
        box.append(box.dataset.text + " ", links);
      }
    }
  }

  // The ticket form links to the pop's call; a call that has a ticket already
  // asks before a second one (the server refuses it unless the box is ticked).
  function showSecond() {
    const box = $("#f-second"), callId = $("#f-call_id");
    if (!box || !callId) return;
    const tickets = callTickets.get(Number(callId.value)) || [];
    const confirm = $("#f-second_for_call");
    if (!callId.value || !tickets.length) {
      box.hidden = true;
      if (confirm) confirm.checked = false;
      return;
    }
    const t = $("#f-second-text");
    text(t, t.dataset.text.replace("{code}", tickets.map((x) => x.code).join(", ")));
    box.hidden = false;
  }

  // After an answered call the agent gives it a wrap-up code; until then the
  // picker says so (and the server refuses to resume taking calls).
  function showWrapup(pop, phase) {
    const box = $("#pop-wrapup");
    if (!box) return;
    const shown = pop.call_id != null && (phase === "talking" || phase === "ended");
    box.hidden = !shown;
    if (!shown) return;
    const callId = $("#wrapup-call_id");
    const select = $("#wrapup-code");
    if (callId.value !== String(pop.call_id)) { callId.value = pop.call_id; select.value = ""; }
    const code = pop.wrapup_code || "";
    if (code && document.activeElement !== select) select.value = code;
    const done = $("#wrapup-done");
    const option = code ? select.querySelector(`option[value="${CSS.escape(code)}"]`) : null;
    done.hidden = !code;
    if (code) text(done, done.dataset.text.replace("{label}", option ? option.textContent : code));
    $("#wrapup-needed").hidden = !!code || phase !== "ended";
    box.classList.toggle("missing", !code && phase === "ended");
  }

  // During a talked call the agent may hand it on (callcenter/transfers.py); the
  // ticket form as it stands goes with it, for the next agent's screen.
  const DRAFT_FIELDS = ["citizen_name", "citizen_address", "reporter_email", "description",
    "district", "domain", "topic", "level", "guidance", "agency_id"];
  function showTransfer(pop, phase) {
    const box = $("#pop-transfer");
    if (!box) return;
    box.hidden = !(pop.call_id != null && phase === "talking" && pop.kind === "queue");
    $("#transfer-call_id").value = pop.call_id == null ? "" : pop.call_id;
  }
  function transferDraft() {
    const form = $("#ticket-form");
    const draft = {};
    if (form) {
      for (const name of DRAFT_FIELDS) {
        const el = form.elements[name];
        if (el && el.value && String(el.value).trim()) draft[name] = el.value;
      }
    }
    $("#transfer-draft").value = JSON.stringify(draft);
  }
  // A call another agent handed on: who, their note, and their draft in the form
  // (only into fields still empty: nothing this agent typed is overwritten).
  function showTransferred(pop) {
    const box = $("#pop-transferred");
    if (!box) return;
    const t = pop.transfer;
    box.hidden = !t;
    if (!t) return;
    const by = $("#pop-transferred-by");
    text(by, by.dataset.text.replace("{name}", t.by || "").replace("{ext}", t.from_extension || ""));
    text($("#pop-transferred-note"), t.note || "");
    const form = $("#ticket-form");
    if (form && t.draft && box.dataset.filled !== String(t.id)) {
      for (const [name, value] of Object.entries(t.draft)) {
        const el = form.elements[name];
        if (el && !el.value && DRAFT_FIELDS.includes(name)) el.value = value;
      }
      box.dataset.filled = String(t.id);
      form.dispatchEvent(new Event("change"));
    }
    $("#pop-transferred-draft").hidden = !(t.draft && Object.keys(t.draft).length);
  }

  function showPop(pop) {
    current = pop || null;
    showBar(current);
    tick();
    // a ringing call in a background tab shows in the tab's title, until answered
    document.title = pop && pop.phase === "ringing" ? "☎ " + (pop.caller || "…") + " · " + pageTitle : pageTitle;
    const card = $("#pop");
    if (!card) return;
    if (!pop) { card.className = "card pop idle"; return; }
    // a callback (the system rang this agent to call a citizen back) pops as a
    // queue call does, with what the agent needs to know about the callback
    const cb = pop.kind === "callback" ? (pop.callback || {}) : null;
    const phase = pop.phase || "ringing";
    card.className = "card pop " + phase + (cb ? " callback" : "") + (pop.kind === "outbound" ? " outbound" : "");
    const title = $("#pop-title");
    text(title, phaseWord(title, pop));
    $("#pop-kind").hidden = !cb;
    const mine = callTickets.get(pop.call_id) || [];
    const named = $("#pop-call-tickets");
    if (named) {
      named.hidden = !mine.length;
      ticketLinks(named.querySelector("span"), mine);
    }
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
      text(a, t.number ? t.code + " · " + t.number : t.code);
      li.append(a, " " + when(t.created_at) + " · " + (statusNames[t.status] || t.status) + " · " + (t.summary || ""));
      return li;
    });
    list($("#pop-calls"), pop.earlier_calls, (c) => {
      const li = document.createElement("li");
      text(li, when(c.started_at) + " · " + hotlineName(c.hotline) + " · " + outcomeWord(c.outcome) + (c.agent ? " · " + c.agent : ""));
      return li;
    });
    showWrapup(pop, phase);
    showTransfer(pop, phase);
    showTransferred(pop);
    // Link the ticket form to this call, and prefill the number, unless the
    // agent already typed one for another purpose.
    const callId = $("#f-call_id");
    if (callId && pop.call_id != null) {
      callId.value = pop.call_id;
      $("#f-linked").classList.remove("unlinked");
      // the number follows the call unless the agent typed one of their own
      const phone = $("#f-citizen_phone");
      if (phone && (!phone.value || phone.value === phone.dataset.auto)) {
        phone.value = pop.caller || "";
        phone.dataset.auto = phone.value;
      }
    }
    showSecond();
  }

  // Supervisors and agencies: a ticket past its deadline is announced at once; so is,
  // to supervisors, an agency disputing a line of its weekly reconciliation, and a
  // matter reported many times without a result (tickets.repeats): level 3?
  function showAlert(msg) {
    const box = $("#live-alerts");
    // overdue, reconciliation, repeats; and for the agency's officers the review's
    // notices (tickets/review)
    const template = box && box.dataset[msg.type];
    if (!template) return;
    const li = document.createElement("li");
    li.dataset.type = msg.type;
    const a = document.createElement("a");
    if (msg.type === "reconciliation") {
      a.href = "/reconciliation?week=" + encodeURIComponent(msg.week || "") + "#discrepancies";
      li.className = "reconciliation-alert";
      text(a, box.dataset.reconciliation.replace("{code}", msg.code)
        .replace("{agency}", msg.agency || "—").replace("{reason}", msg.reason || ""));
      li.append(a);
      box.prepend(li);
      box.hidden = false;
      return;
    }
    a.href = "/tickets/" + encodeURIComponent(msg.code);
    text(a, template.replace("{code}", msg.code).replace("{agency}", msg.agency || "—")
      .replace("{n}", msg.reports == null ? "" : msg.reports));
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
    const bar = $("#callbar");
    ws.onopen = () => {
      if (status) { text(status, status.dataset.ok); status.dataset.state = "open"; }
      if (bar) bar.dataset.state = "open";
    };
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      window.hotlineLast = msg;
      if (msg.type === "hello") {
        serverTime(msg.now);
        if (msg.pop && msg.pop.call_tickets) callTickets.set(msg.pop.call_id, msg.pop.call_tickets);
        showState(msg.state);
        showPop(msg.pop);
      }
      else if (msg.type === "state") showState(msg);
      else if (msg.type === "pop") { serverTime(msg.sent); showPop(msg); }
      else if (msg.type === "pop_gone" && current && msg.uniqueid === current.uniqueid) showPop(null);
      else if (msg.type === "call_tickets") { callTickets.set(msg.call_id, msg.tickets); showPop(current); }
      else if (["overdue", "reconciliation", "repeats", "deadline_soon", "answer_refused",
                "extension_granted", "extension_refused", "extension_requested"].includes(msg.type)) {
        showAlert(msg);
      }
      else if (msg.type === "ticket") showNotice(msg);
      else if (msg.type === "supervision") {
        // [supervision] show_to_agent: a supervisor listens, whispers or barged in
        const el = document.getElementById("supervised");
        if (el) el.hidden = !msg.active;
      }
      document.dispatchEvent(new CustomEvent("hotline:" + msg.type, { detail: msg }));
    };
    ws.onclose = () => {
      if (status) { text(status, status.dataset.lost); status.dataset.state = "lost"; }
      if (bar) { bar.dataset.state = "lost"; bar.title = bar.dataset.lost; }
      setTimeout(connect, 1500);
    };
  }

  // -- keyboard ------------------------------------------------------------
  // Single keys outside a text field, and Ctrl+Enter: keys that neither
  // Chromium nor Firefox (Linux, Windows) takes before the page, as they do
  // Alt+digits (tabs), Alt+F/Alt+E (menus) and Firefox's Alt+Shift accesskeys.
  // The list is on the help overlay (base.html, "?").
  const GO = { w: "/agent", t: "/tickets", n: "/tickets/new", c: "/callbacks", i: "/inbox" };
  const NOT_TEXT = ["checkbox", "radio", "button", "submit", "reset", "file", "range", "color"];

  function typing(el) {
    if (!el || !el.tagName) return false;
    if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    return el.tagName === "INPUT" && !NOT_TEXT.includes(el.type);
  }

  function shortcuts() {
    const help = $("#keys-help");
    const open = $("#keys-open");
    if (open && help) open.addEventListener("click", () => help.showModal());
    let prefix = 0;  // when "g" was pressed, waiting for where to go
    document.addEventListener("keydown", (ev) => {
      if (ev.defaultPrevented || ev.isComposing) return;
      if (ev.key === "Enter" && ev.ctrlKey && !ev.altKey && !ev.metaKey && !ev.shiftKey) {
        // the form the cursor is in, else the page's ticket form
        const inside = ev.target.closest ? ev.target.closest("main form") : null;
        const form = inside || $("#ticket-form");
        if (form) { ev.preventDefault(); form.requestSubmit(); }
        return;
      }
      if (ev.ctrlKey || ev.altKey || ev.metaKey) return;
      if (typing(ev.target)) {
        if (ev.key === "Escape") ev.target.blur();
        return;
      }
      if (help && help.open) return;  // the dialog closes itself on Esc
      const key = ev.key;
      if (prefix && Date.now() - prefix < 2000) {
        prefix = 0;
        const to = GO[key];
        // only where the header offers it (an agency officer has no ticket list)
        if (to && document.querySelector(`header.top nav a[href="${to}"]`)) {
          ev.preventDefault();
          location.assign(to);
        }
        return;
      }
      prefix = 0;
      if (key === "?" && help) { ev.preventDefault(); help.showModal(); }
      else if (key === "g") { ev.preventDefault(); prefix = Date.now(); }
      else if (key === "/") {
        const box = $("main input[type=search]");
        if (box) { ev.preventDefault(); box.focus(); box.select(); }
      }
      else if (key === "f") {
        const field = $("#ticket-form textarea[name=description]");
        if (field) { ev.preventDefault(); field.focus(); }
      }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const transfer = $("#pop-transfer");
    if (transfer) transfer.addEventListener("submit", transferDraft);
    levelFields();
    shortcuts();
    connect();
    if ($("[data-timer]")) setInterval(tick, 500);
  });
})();
