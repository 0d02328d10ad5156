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

  let current = null;

  function showPop(pop) {
    const card = $("#pop");
    if (!card) return;
    if (!pop) { card.hidden = true; current = null; return; }
    current = pop.uniqueid;
    card.hidden = false;
    card.className = "card pop " + (pop.phase || "ringing");
    const title = $("#pop-title");
    text(title, title.dataset[pop.phase] || title.dataset.ringing);
    const field = (name) => card.querySelector(`[data-f="${name}"]`);
    const caller = field("caller");
    text(caller, pop.caller || caller.dataset.none);
    text(field("hotline"), [pop.hotline, pop.hotline_name].filter(Boolean).join(" · "));
    const ivr = field("ivr_path");
    text(ivr, pop.route_source === "fallback" && !pop.ivr_path ? ivr.dataset.fallback : pop.ivr_path);
    const waited = field("waited");
    text(waited, pop.waited == null ? "—" : pop.waited + " " + waited.dataset.unit);
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
      text(li, when(c.started_at) + " · " + (c.hotline || "") + " · " + c.outcome + (c.agent ? " · " + c.agent : ""));
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
    // a ringing call in a background tab shows in the tab's title
    document.title = pop.phase === "ringing" ? "☎ " + (pop.caller || "…") : document.title.replace(/^☎ \S+ /, "");
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
