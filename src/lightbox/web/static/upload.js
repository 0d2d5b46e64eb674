// Upload: files and folders (dropped or chosen) go to STOW-RS in batches, with XMLHttpRequest so that the
// progress bar follows the bytes sent. The answer (DICOM JSON, docs/dicomweb-stow.md) says which instances
// were stored and why others were not; files that are not DICOM are listed and not sent.
"use strict";

(function () {
  const MAX_FILES = 20;
  const MAX_BYTES = 50 * 1000 * 1000;
  const HEADER_BYTES = 64 * 1024; // the preamble, "DICM" and the File Meta Information
  const REASONS = {
    0xa700: "out of resources (storage or database unavailable, disk full): try again later",
    0xa900: "the data set does not match its File Meta Information",
    0xc000: "not understood: not DICOM, cut short, or a missing or invalid UID",
    0x0111: "another object with this SOP Instance UID is stored already",
    0x0110: "the archive could not process it",
  };
  const LONG_VRS = new Set(["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"]);
  const totals = { bytes: 0, sent: 0, stored: 0, failed: 0, skipped: 0 };
  const studies = new Map(); // Study Instance UID -> instances stored
  let queue = Promise.resolve();
  let stopped = "";

  function $(id) { return document.getElementById(id); }

  function size(n) {
    return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.ceil(n / 1e3)} kB`;
  }

  function showProgress() {
    const bar = $("progress");
    bar.max = Math.max(totals.bytes, 1);
    bar.value = Math.min(totals.sent, totals.bytes);
    const percent = totals.bytes ? Math.floor((100 * totals.sent) / totals.bytes) : 100;
    $("progress-text").textContent = `${size(totals.sent)} of ${size(totals.bytes)} sent (${percent}%)`;
    const parts = [`${totals.stored} stored`, `${totals.failed} failed`];
    if (totals.skipped) parts.push(`${totals.skipped} not DICOM`);
    $("upload-summary").textContent = parts.join(", ");
  }

  function failure(name, reason) {
    const table = $("failures");
    const row = table.querySelector("tbody").insertRow();
    row.insertCell().textContent = name;
    row.insertCell().textContent = reason;
    table.hidden = false;
  }

  function first(item, tag) {
    const element = item[tag];
    return element && element.Value && element.Value.length ? element.Value[0] : "";
  }

  // The SOP Instance UID of a PS3.10 file's File Meta Information (0002,0003): explicit VR little endian
  function metaUid(buffer) {
    const view = new DataView(buffer);
    let at = 132;
    while (at + 8 <= view.byteLength && view.getUint16(at, true) === 0x0002) {
      const element = view.getUint16(at + 2, true);
      const vr = String.fromCharCode(view.getUint8(at + 4), view.getUint8(at + 5));
      const long = LONG_VRS.has(vr);
      if (long && at + 12 > view.byteLength) return "";
      const length = long ? view.getUint32(at + 8, true) : view.getUint16(at + 6, true);
      const start = at + (long ? 12 : 8);
      if (start + length > view.byteLength) return ""; // beyond what was read: no UID to match by
      if (element === 0x0003) {
        return new TextDecoder("ascii").decode(new Uint8Array(buffer, start, length)).replace(/[\0 ]+$/, "");
      }
      at = start + length;
    }
    return "";
  }

  // A PS3.10 file has "DICM" after its 128-byte preamble
  async function inspect(entry) {
    const header = await entry.file.slice(0, HEADER_BYTES).arrayBuffer();
    const magic = new Uint8Array(header, 128, Math.max(0, Math.min(4, header.byteLength - 128)));
    if (String.fromCharCode(...magic) !== "DICM") return false;
    entry.uid = metaUid(header);
    return true;
  }

  function post(batch, progress) {
    const boundary = "lightbox-" + Math.random().toString(16).slice(2) + Date.now().toString(16);
    const parts = [];
    for (const f of batch) parts.push(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`, f.file, "\r\n");
    parts.push(`--${boundary}--\r\n`);
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/dicom-web/studies");
      xhr.setRequestHeader("Content-Type", `multipart/related; type="application/dicom"; boundary=${boundary}`);
      xhr.setRequestHeader("Accept", "application/dicom+json");
      xhr.setRequestHeader("X-CSRF-Token", lightbox.csrfToken());
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) progress(e.loaded / e.total); };
      xhr.onload = () => resolve(xhr);
      xhr.onerror = () => reject(new Error("the archive cannot be reached"));
      xhr.send(new Blob(parts));
    });
  }

  function detail(xhr) {
    try {
      const body = JSON.parse(xhr.responseText);
      if (body && body.detail) return body.detail;
    } catch (e) { /* not problem+json */ }
    return `HTTP ${xhr.status}`;
  }

  // Which files of the batch were stored, and why the others were not
  function account(batch, answer) {
    const stored = new Set();
    for (const item of (answer["00081199"] && answer["00081199"].Value) || []) {
      stored.add(first(item, "00081155"));
      const study = /\/studies\/([0-9.]+)(\/|$)/.exec(first(item, "00081190"));
      if (study) studies.set(study[1], (studies.get(study[1]) || 0) + 1);
    }
    const reasons = new Map();
    const unnamed = [];
    for (const item of (answer["00081198"] && answer["00081198"].Value) || []) {
      const code = first(item, "00081197");
      const reason = REASONS[code] || `failure reason ${Number(code).toString(16).toUpperCase()}`;
      const uid = first(item, "00081155");
      if (uid) reasons.set(uid, reason); else unnamed.push(reason);
    }
    // A file whose UID could not be read takes a stored instance no other file of the batch names
    const named = new Set(batch.map((f) => f.uid).filter(Boolean));
    let unclaimed = [...stored].filter((uid) => !named.has(uid)).length;
    for (const f of batch) {
      if (f.uid && stored.has(f.uid)) { totals.stored += 1; continue; }
      if (!f.uid && unclaimed > 0) { unclaimed -= 1; totals.stored += 1; continue; }
      totals.failed += 1;
      failure(f.name, reasons.get(f.uid) || unnamed.shift() || "not stored (the archive's answer does not name it)");
    }
  }

  async function send(batch) {
    const bytes = batch.reduce((sum, f) => sum + f.file.size, 0);
    const before = totals.sent;
    let xhr;
    try {
      xhr = await post(batch, (share) => { totals.sent = before + share * bytes; showProgress(); });
    } catch (e) {
      totals.sent = before + bytes;
      totals.failed += batch.length;
      for (const f of batch) failure(f.name, e.message);
      return;
    }
    totals.sent = before + bytes;
    if ([200, 202, 409].includes(xhr.status)) {
      account(batch, JSON.parse(xhr.responseText));
      return;
    }
    totals.failed += batch.length;
    const why = detail(xhr);
    for (const f of batch) failure(f.name, why);
    if (xhr.status === 401 || xhr.status === 403) {
      stopped = xhr.status === 401 ? "The session has ended: log in again." : `Your account may not store: ${why}`;
    }
  }

  // A file to send, or one listed as not DICOM
  async function isDicom(f) {
    let reason = "not a DICOM file (no DICM after the 128-byte preamble)";
    if (f.file.name === "DICOMDIR") reason = "a DICOMDIR (the media's index), not an image";
    else if (await inspect(f).catch(() => false)) return true;
    totals.skipped += 1;
    totals.bytes -= f.file.size;
    failure(f.name, reason);
    return false;
  }

  async function sendOrSkip(batch) {
    if (stopped) {
      totals.failed += batch.length;
      totals.sent += batch.reduce((sum, f) => sum + f.file.size, 0);
      for (const f of batch) failure(f.name, "not sent");
    } else {
      await send(batch);
    }
    showProgress();
  }

  // Files are looked at as they are batched, so that the first request leaves at once
  async function upload(files) {
    $("progress-card").hidden = false;
    totals.bytes += files.reduce((sum, f) => sum + f.file.size, 0);
    showProgress();
    let batch = [];
    let bytes = 0;
    for (const f of files) {
      if (!(await isDicom(f))) { showProgress(); continue; }
      if (batch.length && (batch.length >= MAX_FILES || bytes + f.file.size > MAX_BYTES)) {
        await sendOrSkip(batch);
        batch = [];
        bytes = 0;
      }
      batch.push(f);
      bytes += f.file.size;
    }
    if (batch.length) await sendOrSkip(batch);
    if (stopped) {
      $("upload-error").textContent = stopped;
      $("upload-error").hidden = false;
    }
    await listStudies();
  }

  // The studies stored, named by their patient (one QIDO-RS search), with links to see them
  async function listStudies() {
    if (!studies.size) return;
    const uids = [...studies.keys()];
    const names = new Map();
    try {
      const q = new URLSearchParams({ StudyInstanceUID: uids.slice(0, 100).join(","), includefield: "StudyDescription" });
      const answer = await lightbox.read("/dicom-web/studies?" + q);
      if (answer.status === 200) {
        for (const m of await answer.json()) {
          const name = ((first(m, "00100010") || {}).Alphabetic || "").replaceAll("^", " ").trim();
          const label = [name || "(no name)", first(m, "00100020"), first(m, "00081030")].filter(Boolean).join(" · ");
          names.set(first(m, "0020000D"), label);
        }
      }
    } catch (e) { /* the links work without the names */ }
    const list = $("stored-studies").querySelector("ul");
    list.replaceChildren();
    for (const uid of uids) {
      const item = document.createElement("li");
      const label = document.createElement("span");
      label.textContent = `${names.get(uid) || uid}: ${studies.get(uid)} instances stored `;
      const open = document.createElement("a");
      open.href = "/viewer?StudyInstanceUIDs=" + encodeURIComponent(uid);
      open.textContent = "Open in the viewer";
      const find = document.createElement("a");
      find.href = "/studies?StudyInstanceUID=" + encodeURIComponent(uid);
      find.textContent = "In the study list";
      item.append(label, open, " · ", find);
      list.append(item);
    }
    $("stored-studies").hidden = false;
  }

  function add(files) {
    if (!files.length) return;
    queue = queue.then(() => upload(files)).catch((e) => {
      $("upload-error").textContent = `The upload stopped: ${e.message}`;
      $("upload-error").hidden = false;
    });
  }

  function readEntries(reader) {
    return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
  }

  // A dropped folder, walked (readEntries answers a part of a folder at a time, then nothing)
  async function walk(entry, into) {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      into.push({ file, name: entry.fullPath.replace(/^\//, "") });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (let part = await readEntries(reader); part.length; part = await readEntries(reader)) {
        for (const child of part) await walk(child, into);
      }
    }
  }

  async function dropped(transfer) {
    // The entries are taken during the drop event: the DataTransfer is emptied after it
    const entries = [...transfer.items].map((item) => item.webkitGetAsEntry && item.webkitGetAsEntry()).filter(Boolean);
    if (!entries.length) return [...transfer.files].map((file) => ({ file, name: file.name }));
    const files = [];
    for (const entry of entries) await walk(entry, files);
    return files;
  }

  function picked(input) {
    const files = [...input.files].map((file) => ({ file, name: file.webkitRelativePath || file.name }));
    input.value = ""; // the same files may be chosen again
    add(files);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const drop = $("drop");
    $("files").addEventListener("change", (e) => picked(e.target));
    $("folder").addEventListener("change", (e) => picked(e.target));
    // Anywhere on the page: a file dropped beside the zone is uploaded too, never opened by the browser
    for (const name of ["dragenter", "dragover"]) {
      document.addEventListener(name, (e) => { e.preventDefault(); drop.classList.add("over"); });
    }
    document.addEventListener("dragleave", (e) => { if (!e.relatedTarget) drop.classList.remove("over"); });
    document.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      dropped(e.dataTransfer).then(add, (error) => {
        $("upload-error").textContent = `The dropped files could not be read: ${error.message}`;
        $("upload-error").hidden = false;
      });
    });
  });
})();
