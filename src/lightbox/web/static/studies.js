// The study list: the search form's fields (in this page's URL, so that a search can be bookmarked)
// become a QIDO-RS study search, a page of 50 at a time, the last stored first; each study opens in the
// viewer, and those who may share or delete get a dialog for each. The page offers what the user's role
// allows; the API decides.
"use strict";

(function () {
  const PAGE = 50;
  const FIELDS = ["PatientName", "PatientID", "AccessionNumber", "from", "to", "Modality"];
  const here = new URLSearchParams(location.search);
  const offset = Math.max(0, parseInt(here.get("offset") || "0", 10) || 0);
  let role = "";

  function $(id) { return document.getElementById(id); }

  function first(match, tag) {
    const element = match[tag];
    return element && element.Value && element.Value.length ? element.Value[0] : "";
  }

  // "Smith^Johanna^^Dr" reads "Smith, Dr Johanna"
  function personName(value) {
    const parts = ((value && value.Alphabetic) || "").split("^").map((p) => p.trim());
    const [family = "", given = "", middle = "", prefix = "", suffix = ""] = parts;
    const rest = [prefix, given, middle, suffix].filter(Boolean).join(" ");
    return family && rest ? `${family}, ${rest}` : family || rest;
  }

  function isoDate(value) {
    return /^\d{8}$/.test(value) ? `${value.slice(0, 4)}-${value.slice(4, 6)}-${value.slice(6)}` : value;
  }

  async function problem(answer) {
    try {
      const body = await answer.json();
      if (body && body.detail) return body.detail;
    } catch (e) { /* not problem+json */ }
    return `HTTP ${answer.status}`;
  }

  function failed(message) {
    const error = $("studies-error");
    error.textContent = message;
    error.hidden = false;
    $("studies-status").textContent = "";
  }

  // The form's fields as a QIDO-RS search (docs/dicomweb-qido.md)
  function search() {
    const q = new URLSearchParams();
    // Names as the list shows them ("Smith, Jo") are DICOM's "Smith^Jo"; the start of a name finds it
    const name = (here.get("PatientName") || "").trim().replace(/\s*,\s*/g, "^");
    if (name) q.set("PatientName", /[*?]/.test(name) ? name : name + "*");
    for (const key of ["PatientID", "AccessionNumber", "StudyInstanceUID"]) {
      const value = (here.get(key) || "").trim();
      if (value) q.set(key, value);
    }
    const modality = (here.get("Modality") || "").trim().toUpperCase();
    if (modality) q.set("ModalitiesInStudy", modality);
    const from = (here.get("from") || "").replaceAll("-", "");
    const to = (here.get("to") || "").replaceAll("-", "");
    if (from || to) q.set("StudyDate", from === to ? from : `${from}-${to}`);
    q.set("fuzzymatching", "true");
    q.set("includefield", "StudyDescription");
    q.set("orderby", "-stored"); // Lightbox's own: the studies stored last first
    q.set("limit", String(PAGE));
    q.set("offset", String(offset));
    return q;
  }

  function pageLink(id, to) {
    const link = $(id);
    const params = new URLSearchParams(here);
    if (to > 0) params.set("offset", String(to)); else params.delete("offset");
    link.href = "/studies" + (params.toString() ? "?" + params : "");
    link.hidden = false;
  }

  function cell(row, text, className) {
    const td = row.insertCell();
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function button(label, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "link";
    b.textContent = label;
    b.addEventListener("click", onClick);
    return b;
  }

  function show(matches) {
    const body = $("studies").querySelector("tbody");
    const mayShare = role === "admin" || role === "radiologist";
    const mayDelete = role === "admin" || role === "radiologist";
    for (const m of matches) {
      const study = {
        uid: first(m, "0020000D"),
        patient: personName(first(m, "00100010")),
        patientId: first(m, "00100020"),
        date: isoDate(first(m, "00080020")),
        description: first(m, "00081030"),
        accession: first(m, "00080050"),
      };
      const row = body.insertRow();
      row.dataset.uid = study.uid;
      const who = cell(row, "");
      const name = document.createElement("span");
      name.className = "patient-name";
      name.textContent = study.patient || "(no name)";
      const id = document.createElement("span");
      id.className = "muted patient-id";
      id.textContent = study.patientId;
      who.append(name, document.createElement("br"), id);
      cell(row, study.date);
      cell(row, study.description);
      cell(row, study.accession);
      cell(row, ((m["00080061"] && m["00080061"].Value) || []).join(", "));
      cell(row, `${first(m, "00201206")} / ${first(m, "00201208")}`, "number");
      const actions = document.createElement("div"); // a flex box inside the cell: the cell stays a cell
      actions.className = "row-actions";
      cell(row, "").append(actions);
      const open = document.createElement("a");
      open.href = "/viewer?StudyInstanceUIDs=" + encodeURIComponent(study.uid);
      open.textContent = "Open";
      open.setAttribute("aria-label", `Open the study of ${study.patient || study.patientId} in the viewer`);
      actions.append(open);
      if (mayShare) actions.append(button("Share…", () => share.open(study)));
      if (mayDelete) actions.append(button("Delete…", () => remove.open(study, row)));
    }
  }

  async function list() {
    for (const key of FIELDS) {
      const field = $("search").elements[key];
      if (field && here.has(key)) field.value = here.get(key);
    }
    const me = await lightbox.read("/api/me");
    if (me.ok) role = (await me.json()).role;
    const answer = await lightbox.read("/dicom-web/studies?" + search());
    if (answer.status === 403) { failed(`Your account may not search studies: ${await problem(answer)}`); return; }
    if (answer.status === 400) { failed(`The search is not valid: ${await problem(answer)}`); return; }
    if (answer.status !== 200 && answer.status !== 204) { failed(`The search failed: ${await problem(answer)}`); return; }
    const matches = answer.status === 204 ? [] : await answer.json();
    if (offset > 0) pageLink("previous", Math.max(0, offset - PAGE));
    if (answer.headers.get("Warning")) pageLink("next", offset + matches.length);
    if (!matches.length) {
      $("studies-status").textContent = offset ? "No more studies." : "No study matches the search.";
      return;
    }
    show(matches);
    $("studies").hidden = false;
    $("studies-status").textContent = `Studies ${offset + 1}–${offset + matches.length}, the last stored first.`;
  }

  function described(study) {
    const who = study.patient || "(no name)";
    const what = [study.description, study.date].filter(Boolean).join(", ") || study.uid;
    return `${who}${study.patientId ? ` (${study.patientId})` : ""}: ${what}`;
  }

  function error(id, message) {
    const p = $(id);
    p.textContent = message;
    p.hidden = !message;
  }

  const share = {
    study: null,
    open(study) {
      this.study = study;
      const form = $("share-form");
      form.reset();
      $("share-what").textContent = described(study);
      $("share-result").hidden = true;
      $("share-create").disabled = false;
      $("share-create").hidden = false;
      $("share-copied").textContent = "";
      error("share-error", "");
      $("share-dialog").showModal();
    },
    async create(event) {
      event.preventDefault();
      const days = Number($("share-days").value);
      if (!(days > 0 && days <= 90)) { error("share-error", "A link works from 1 to 90 days."); return; }
      $("share-create").disabled = true;
      error("share-error", "");
      try {
        const answer = await lightbox.change("POST", "/api/shares", {
          study_instance_uid: this.study.uid,
          days,
          deidentify: $("share-deidentify").checked,
          note: $("share-note").value,
        });
        if (answer.status !== 201) {
          error("share-error", `The link could not be made: ${await problem(answer)}`);
          $("share-create").disabled = false;
          return;
        }
        $("share-link").value = (await answer.json()).url;
        $("share-result").hidden = false;
        $("share-create").hidden = true; // one link per dialog: open it again for another
        $("share-link").focus();
        $("share-link").select();
      } catch (e) {
        error("share-error", `The archive cannot be reached: ${e.message}`);
        $("share-create").disabled = false;
      }
    },
    async copy() {
      const link = $("share-link");
      try {
        await navigator.clipboard.writeText(link.value);
        $("share-copied").textContent = "Copied.";
      } catch (e) {
        link.select(); // the clipboard is not ours to write (an insecure origin): the text is selected
        $("share-copied").textContent = "Selected: copy it with Ctrl+C.";
      }
    },
  };

  const remove = {
    study: null,
    row: null,
    open(study, row) {
      this.study = study;
      this.row = row;
      $("delete-form").reset();
      $("delete-what").textContent = described(study);
      $("delete-button").disabled = true;
      error("delete-error", "");
      $("delete-dialog").showModal();
    },
    typed() {
      $("delete-button").disabled = $("delete-confirm").value.trim().toLowerCase() !== "delete";
    },
    async confirm(event) {
      event.preventDefault();
      if ($("delete-button").disabled) return;
      $("delete-button").disabled = true;
      try {
        const answer = await lightbox.change("DELETE", "/api/studies/" + encodeURIComponent(this.study.uid));
        if (!answer.ok) {
          const why = await problem(answer);
          error("delete-error", answer.status === 403 ? `Not allowed: ${why}` : `The study was not deleted: ${why}`);
          return;
        }
        const gone = await answer.json();
        this.row.remove();
        $("delete-dialog").close();
        const done = $("studies-done");
        done.textContent = `Deleted ${described(this.study)} (${gone.instances} instances).`;
        done.hidden = false;
      } catch (e) {
        error("delete-error", `The archive cannot be reached: ${e.message}`);
      } finally {
        this.typed();
      }
    },
  };

  // Empty fields stay out of the search's URL (disabled fields are not submitted), for a short bookmark
  function trim() {
    for (const field of $("search").elements) if (field.name && !field.value.trim()) field.disabled = true;
  }

  window.addEventListener("pageshow", () => {
    for (const field of $("search").elements) field.disabled = false; // back to this page: usable again
  });

  document.addEventListener("DOMContentLoaded", () => {
    $("search").addEventListener("submit", trim);
    $("share-form").addEventListener("submit", (e) => share.create(e));
    $("share-copy").addEventListener("click", () => share.copy());
    $("share-close").addEventListener("click", () => $("share-dialog").close());
    $("delete-form").addEventListener("submit", (e) => remove.confirm(e));
    $("delete-confirm").addEventListener("input", () => remove.typed());
    $("delete-cancel").addEventListener("click", () => $("delete-dialog").close());
    list().catch((e) => failed(`The archive cannot be reached: ${e.message}`));
  });
})();
