// The SMS desk: reload when a message arrives or moves; count the parts of a reply.
(function () {
  "use strict";
  const desk = document.getElementById("sms-desk");
  const one = document.getElementById("message");
  // the desk: a message in arrived or was decided (our answers' reports do not move it);
  // one message's page: only the state of what it shows changes (never a reload while
  // the agent types)
  document.addEventListener("hotline:inbox", (ev) => {
    const m = ev.detail || {};
    if (desk && m.direction === "in") location.reload();
    if (!one) return;
    const item = one.querySelector(`li[data-id="${Number(m.id)}"] .msg-state`);
    if (item) item.textContent = m.state;
  });
  const text = document.getElementById("reply-text");
  const out = document.getElementById("reply-parts");
  if (!text || !out) return;
  let timer = null;
  const count = () => {
    fetch("/messages/parts?text=" + encodeURIComponent(text.value), { credentials: "same-origin" })
      .then((r) => r.json())
      .then((s) => {
        const coding = s.coding === "ucs2" ? "UCS-2" : "GSM-7";
        out.textContent = `${out.dataset.label}: ${s.parts} (${coding}, ${s.units} ${out.dataset.chars})`;
        out.classList.toggle("error", s.parts > Number(out.dataset.max));
      });
  };
  text.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(count, 150); });
  count();
})();
