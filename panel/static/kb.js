// The procedures knowledge base on the agent's workspace: search while the
// citizen talks, read the article beside the pop, use it for the ticket.
// It never submits or reloads the page (the pop, the call timer and the form
// stay as they are), and puts everything on the page with textContent.
"use strict";

(function () {
  const box = document.getElementById("kb-search");
  if (!box) return;
  const q = document.getElementById("kb-q");
  const hits = document.getElementById("kb-hits");
  const status = document.getElementById("kb-status");
  const detail = document.getElementById("kb-detail");
  const words = box.dataset;
  let timer = null;
  let pending = null;
  let asked = "";

  function el(tag, cls, value) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (value != null) e.textContent = String(value);
    return e;
  }

  async function getJSON(url, signal) {
    const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, signal });
    if (!r.ok) throw new Error("HTTP " + r.status);
    return r.json();
  }

  function showHits(found) {
    hits.replaceChildren();
    status.textContent = "";
    if (!found.items.length) {
      status.textContent = words.none;
      return;
    }
    if (!found.complete) status.textContent = words.some;
    found.items.forEach((h) => {
      const li = el("li");
      const b = el("button", "kb-hit", h.title);
      b.type = "button";
      b.dataset.id = h.id;
      b.addEventListener("click", () => open(h.id));
      li.append(b);
      if (h.example) li.append(" ", el("span", "badge kb-example", words.example));
      if (h.agency) li.append(el("div", "muted", h.agency.name));
      hits.append(li);
    });
  }

  async function search() {
    const text = q.value.trim();
    if (text === asked) return;
    asked = text;
    if (pending) pending.abort();
    if (!text) {
      hits.replaceChildren();
      status.textContent = "";
      return;
    }
    pending = new AbortController();
    try {
      showHits(await getJSON("/api/v1/kb/articles?limit=8&q=" + encodeURIComponent(text), pending.signal));
    } catch (err) {
      if (err.name !== "AbortError") { status.textContent = words.failed; asked = ""; }
    }
  }

  function section(title, value) {
    if (!value) return [];
    return [el("h4", null, title), el("div", "kb-text", value)];
  }

  async function open(id) {
    let a;
    try {
      a = await getJSON("/api/v1/kb/articles/" + id + "?opened=1");
    } catch (err) {
      status.textContent = words.failed;
      return;
    }
    detail.replaceChildren();
    const h = el("h3", null, a.title);
    if (a.example) h.append(" ", el("span", "badge kb-example", words.example));
    detail.append(h);
    if (a.summary) detail.append(el("p", "kb-summary", a.summary));
    detail.append(...section(words.steps, a.steps), ...section(words.documents, a.documents),
      ...section(words.fees, a.fees), ...section(words.time, a.processing_time),
      ...section(words.agency, a.agency && a.agency.name));
    if (a.template_links.length) {
      detail.append(el("h4", null, words.templates));
      const ul = el("ul", "kb-links");
      a.template_links.forEach((l) => {
        const li = el("li");
        if (l.href) {
          const link = el("a", null, l.label);
          link.href = l.href; link.target = "_blank"; link.rel = "noopener noreferrer";
          li.append(link);
        } else li.textContent = l.label;
        ul.append(li);
      });
      detail.append(ul);
    }
    const use = el("button", "primary", words.use);
    use.type = "button";
    use.id = "kb-use";
    use.addEventListener("click", () => useArticle(a));
    const whole = el("a", null, words.open);
    whole.href = "/kb/" + a.id;
    whole.target = "_blank";
    whole.rel = "noopener";
    const p = el("p");
    p.append(use, " ", whole);
    detail.append(p);
    detail.hidden = false;
  }

  // The article into the ticket form: its id, level 1, and the guidance (if still empty).
  function useArticle(a) {
    const form = document.getElementById("ticket-form");
    if (!form) return;
    document.getElementById("f-kb_article_id").value = a.id;
    document.getElementById("f-kb-title").textContent = a.title;
    document.getElementById("f-kb-chosen").hidden = false;
    const one = form.querySelector("input[name=level][value='1']");
    if (one && !one.checked) {
      one.checked = true;
      one.dispatchEvent(new Event("change", { bubbles: true }));
    }
    const guidance = form.querySelector("textarea[name=guidance]");
    if (guidance && !guidance.value.trim()) {
      const lines = [a.title];
      if (a.summary) lines.push(a.summary);
      lines.push(a.steps);
      if (a.documents) lines.push(words.documents + ": " + a.documents);
      if (a.fees) lines.push(words.fees + ": " + a.fees);
      if (a.processing_time) lines.push(words.time + ": " + a.processing_time);
      guidance.value = lines.join("\n").slice(0, 5000);
    }
  }

  const clear = document.getElementById("f-kb-clear");
  if (clear) {
    clear.addEventListener("click", () => {
      document.getElementById("f-kb_article_id").value = "";
      document.getElementById("f-kb-chosen").hidden = true;
    });
  }

  q.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, 250);
  });
  q.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") {
      ev.preventDefault();
      clearTimeout(timer);
      search();
    }
  });
})();
