// Repeat reports on the ticket form: while the agent types the report, earlier
// reports of the same matter (the same phone, the same words, with or without
// diacritics) are fetched, a moment after the typing pauses, and shown under the
// form; "Link" puts the report's code in the form, and the ticket is linked to it
// once created (panel/views/tickets.py).  Everything is put on the page with
// textContent.
"use strict";

(function () {
  const form = document.getElementById("ticket-form");
  const box = document.getElementById("repeat-suggest");
  if (!form || !box) return;
  const hits = document.getElementById("repeat-hits");
  const status = document.getElementById("repeat-status");
  const chosen = document.getElementById("f-repeat-chosen");
  const chosenText = document.getElementById("f-repeat-text");
  const field = document.getElementById("f-repeat_of");
  const words = box.dataset;
  const FIELDS = ["description", "citizen_address", "citizen_phone", "topic", "district"];
  const WAIT_MS = 350;
  // the suggestions look at a report's first words only: what the API takes of each
  // field (panel/api/repeats.py QUERY_MAX), so the URL stays short
  const MAX_CHARS = { description: 300, citizen_address: 100, citizen_phone: 40, topic: 32, district: 80 };
  let timer = null;
  let pending = null;
  let asked = "";

  function el(tag, cls, value) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (value != null) e.textContent = String(value);
    return e;
  }

  function query() {
    const params = new URLSearchParams();
    for (const name of FIELDS) {
      const input = form.elements[name];
      const value = input && input.value ? String(input.value).trim().slice(0, MAX_CHARS[name]) : "";
      if (value) params.set(name, value);
    }
    return params;
  }

  function showChosen() {
    const code = field.value;
    chosen.hidden = !code;
    chosenText.textContent = code ? words.linked.replace("{code}", code) : "";
    hits.querySelectorAll("button.repeat-link").forEach((b) => {
      b.setAttribute("aria-pressed", b.dataset.code === code ? "true" : "false");
    });
  }

  function show(found) {
    hits.replaceChildren();
    status.textContent = "";
    box.hidden = !found.items.length && !field.value;
    found.items.forEach((s) => {
      const t = s.ticket;
      const li = el("li", "repeat-hit");
      li.dataset.code = t.code;
      const head = el("div", "repeat-head");
      const link = el("a", "code", t.code);
      link.href = "/tickets/" + encodeURIComponent(t.code);
      link.target = "_blank";
      link.rel = "noopener";
      head.append(link, " ", el("span", "muted", new Date(t.created_at).toLocaleDateString("vi-VN")));
      if (s.reports > 1) head.append(" ", el("span", "badge repeats", words.reports.replace("{n}", s.reports)));
      s.reasons.forEach((r) => head.append(" ", el("span", "badge reason reason-" + r, words["reason" + r[0].toUpperCase() + r.slice(1)] || r)));
      const b = el("button", "repeat-link", words.link);
      b.type = "button";
      b.dataset.code = t.code;
      b.addEventListener("click", () => {
        field.value = field.value === t.code ? "" : t.code;
        showChosen();
      });
      li.append(head, el("div", "repeat-text", t.description), b);
      hits.append(li);
    });
    showChosen();
  }

  async function suggest() {
    const params = query();
    const key = params.toString();
    if (key === asked) return;
    asked = key;
    if (pending) pending.abort();
    if (!params.get("description") && !params.get("citizen_phone")) {
      show({ items: [] });
      return;
    }
    pending = new AbortController();
    try {
      const r = await fetch("/api/v1/repeats/suggestions?limit=5&" + key, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
        signal: pending.signal,
      });
      if (!r.ok) throw new Error("HTTP " + r.status);
      show(await r.json());
    } catch (err) {
      if (err.name !== "AbortError") { box.hidden = false; status.textContent = words.failed; asked = ""; }
    }
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(suggest, WAIT_MS);
  }

  document.getElementById("f-repeat-clear").addEventListener("click", () => {
    field.value = "";
    showChosen();
  });
  // typed, chosen, or filled in by the screen-pop (which sends "change")
  form.addEventListener("input", later);
  form.addEventListener("change", later);
  showChosen();
  later();
})();
