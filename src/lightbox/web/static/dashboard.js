// The dashboard: counts and storage tiers from /api/statistics; the last hour's stores and the recent activity from the
// audit trail (/api/audit, administrators only: others see the counts).
"use strict";

(function () {
  const number = new Intl.NumberFormat();

  function bytes(n) {
    const units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
    return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
  }

  function set(id, text) { document.getElementById(id).textContent = text; }

  function failed(message) {
    const error = document.getElementById("dashboard-error");
    error.textContent = message;
    error.hidden = false;
  }

  async function counts() {
    const answer = await lightbox.read("/api/statistics");
    if (!answer.ok) { failed(`The statistics could not be read (HTTP ${answer.status}).`); return; }
    const s = await answer.json();
    for (const key of ["patients", "studies", "series", "instances"]) set(key, number.format(s[key]));
    set("stored", bytes(s.size_bytes));
    const tiers = document.querySelector("#tiers tbody");
    for (const tier of s.tiers) {
      const row = tiers.insertRow();
      row.dataset.tier = tier.name;
      for (const value of [tier.name, number.format(tier.instances), bytes(tier.size_bytes)]) row.insertCell().textContent = value;
    }
  }

  async function activity() {
    const since = new Date(Date.now() - 3600 * 1000).toISOString();
    const hour = await lightbox.read(`/api/audit?action=store&since=${encodeURIComponent(since)}&limit=1000`);
    const note = document.getElementById("activity-note");
    if (hour.status === 403) {
      set("ingest-hour", "–");
      note.textContent = "The activity is for administrators.";
      note.hidden = false;
      return;
    }
    if (!hour.ok) { failed(`The audit trail could not be read (HTTP ${hour.status}).`); return; }
    const stored = (await hour.json()).records.filter((r) => r.outcome === "success");
    set("ingest-hour", number.format(stored.reduce((sum, r) => sum + r.instances, 0)));

    const recent = await lightbox.read("/api/audit?limit=15");
    if (!recent.ok) { failed(`The audit trail could not be read (HTTP ${recent.status}).`); return; }
    const table = document.getElementById("activity");
    const body = table.querySelector("tbody");
    for (const r of (await recent.json()).records) {
      const row = body.insertRow();
      const who = [r.ae_title, r.user].filter(Boolean).join("/") || r.protocol;
      const cells = [new Date(r.time).toLocaleString(), r.action, who, r.patient_id || "", r.instances || "", r.outcome];
      for (const value of cells) row.insertCell().textContent = value;
      if (r.outcome !== "success") row.classList.add("failure");
    }
    table.hidden = false;
  }

  document.addEventListener("DOMContentLoaded", () => {
    counts().catch((e) => failed(`The archive cannot be reached: ${e.message}`));
    activity().catch((e) => failed(`The archive cannot be reached: ${e.message}`));
  });
})();
