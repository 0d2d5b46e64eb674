// The audit log (/api/audit): the filters live in the page's URL (a GET form, so a search can be
// bookmarked or sent), newest first, a page at a time ("Older" follows next_before).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const FIELDS = ["user", "ae", "patient", "study", "action", "since", "until"];
  const TIMES = new Set(["since", "until"]);
  const PAGE = 50;

  // The URL's filters, as the form shows them (times as the browser's local datetime-local values)
  function filters() {
    const here = new URLSearchParams(location.search);
    const chosen = new URLSearchParams();
    for (const name of FIELDS) {
      const value = (here.get(name) || "").trim();
      if (value) chosen.set(name, value);
    }
    return { chosen, before: here.get("before") };
  }

  // The API's query: local times become ISO 8601 in UTC
  function query(chosen, before) {
    const params = new URLSearchParams({ limit: String(PAGE) });
    for (const [name, value] of chosen) {
      if (!TIMES.has(name)) { params.set(name, value); continue; }
      const moment = new Date(value);
      if (Number.isNaN(moment.getTime())) throw new Error(`${name}: ${value} is not a date and time`);
      params.set(name, moment.toISOString());
    }
    if (before) params.set("before", before);
    return params;
  }

  function who(r) {
    let text = [r.ae_title, r.user].filter(Boolean).join("/");
    if (r.address) text = text ? `${text}@${r.address}` : r.address;
    return `${r.protocol}${text ? ": " + text : ""}`;
  }

  async function show() {
    const { chosen, before } = filters();
    const form = $("filters");
    for (const [name, value] of chosen) form.elements[name].value = value;
    const answer = await lightbox.read(`/api/audit?${query(chosen, before)}`);
    if (!answer.ok) { lightbox.fail(await lightbox.problem(answer)); return; }
    const page = await answer.json();
    const body = $("records").querySelector("tbody");
    for (const r of page.records) {
      const row = body.insertRow();
      const cells = [new Date(r.time).toLocaleString(), r.action, r.outcome, who(r), r.patient_id || "",
        r.study_instance_uid || "", r.instances || "", r.detail];
      for (const value of cells) row.insertCell().textContent = value;
      row.cells[5].className = "uid";
      if (r.outcome !== "success") row.classList.add("failure");
    }
    $("records").hidden = page.records.length === 0;
    $("no-records").hidden = page.records.length > 0;
    $("newest").hidden = !before;
    $("newest").href = `/admin/audit?${chosen}`;
    if (page.next_before !== null) {
      const older = new URLSearchParams(chosen);
      older.set("before", String(page.next_before));
      $("older").href = `/admin/audit?${older}`;
      $("older").hidden = false;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    // Only the filters given go in the URL, and a new search starts again from the newest records
    $("filters").addEventListener("submit", (event) => {
      event.preventDefault();
      const chosen = new URLSearchParams();
      for (const name of FIELDS) {
        const value = event.target.elements[name].value.trim();
        if (value) chosen.set(name, value);
      }
      location.assign(`/admin/audit${chosen.size ? "?" + chosen : ""}`);
    });
    show().catch((e) => lightbox.fail(`The audit log cannot be read: ${e.message}`));
  });
})();
