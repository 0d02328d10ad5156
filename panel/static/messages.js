// The SMS desk: reload when a message arrives or moves; count the parts of a reply.
(function () {
  "use strict";
  const desk = document.getElementById("sms-desk");
  const one = document.getElementById("message");
  document.addEventListener("hotline:inbox", (ev) => {
    const m = ev.detail || {};
    if (desk) location.reload();
    else if (one && String(m.id) === one.dataset.id) location.reload();
    else if (one && m.direction === "out") location.reload();
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
