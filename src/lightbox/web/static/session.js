// What every page of a logged-in user shares: the CSRF header for changes (csrfToken for a request made
// otherwise, as an upload with progress), the logout button, and the pages' messages, confirmation dialog
// and copy button.
"use strict";

window.lightbox = (function () {
  function csrfToken() {
    const found = document.cookie.split("; ").find((c) => c.startsWith("lightbox_csrf="));
    return found ? decodeURIComponent(found.split("=")[1]) : "";
  }

  // A change made with the session cookie carries the session's CSRF token (double submit)
  async function change(method, url, body) {
    const headers = { "X-CSRF-Token": csrfToken() };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(url, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
  }

  // A read; a session that has ended sends the browser to log in again and come back
  async function read(url) {
    const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (answer.status === 401) {
      window.location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
      throw new Error("session ended");
    }
    return answer;
  }

  // What a refused request says: its problem+json detail, else its status
  async function problem(answer) {
    try {
      const body = await answer.json();
      if (body && body.detail) return body.detail;
    } catch (e) { /* not JSON */ }
    return `The archive answered HTTP ${answer.status}.`;
  }

  // The page's messages: #status (role="status") for what was done, #error (role="alert") for what was not
  function say(text) {
    const status = document.getElementById("status");
    const error = document.getElementById("error");
    if (status) status.textContent = text;
    if (error) error.hidden = true;
  }

  function fail(text) {
    const error = document.getElementById("error");
    error.textContent = text;
    error.hidden = false;
  }

  // Asks with the page's <dialog id="confirm"> (templates/confirm.html); true when confirmed
  function confirm(question, action) {
    const dialog = document.getElementById("confirm");
    document.getElementById("confirm-question").textContent = question;
    document.getElementById("confirm-yes").textContent = action;
    dialog.returnValue = "";
    dialog.showModal();
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
    });
  }

  // Copies a field's text to the clipboard (selected, to copy by hand where the clipboard is closed)
  async function copy(field) {
    field.select();
    try {
      await navigator.clipboard.writeText(field.value);
      say("Copied to the clipboard.");
    } catch (e) {
      say("Selected: copy it with Ctrl+C.");
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const logout = document.getElementById("logout");
    if (logout) {
      logout.addEventListener("click", async () => {
        await change("POST", "/api/logout");
        window.location.assign("/login");
      });
    }
  });

  return { change, read, csrfToken, problem, say, fail, confirm, copy };
})();
