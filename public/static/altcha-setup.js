// ALTCHA's widget (the "external" build, for a strict CSP) and its proof-of-work worker,
// both vendored; the worker is a file of ours, not a data: URL.
import "./vendor/altcha.min.js";
import "./vendor/altcha-vi.js";

const worker = document.getElementById("altcha-setup").dataset.worker;
for (const algorithm of ["PBKDF2/SHA-256", "PBKDF2/SHA-384", "PBKDF2/SHA-512"]) {
  globalThis.$altcha.algorithms.set(algorithm, () => new Worker(worker));
}
