// What every page of a logged-in user shares: the CSRF header for changes (csrfToken for a request made
// otherwise, as an upload with progress), and the logout button.
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

  document.addEventListener("DOMContentLoaded", () => {
    const logout = document.getElementById("logout");
    if (logout) {
      logout.addEventListener("click", async () => {
        await change("POST", "/api/logout");
        window.location.assign("/login");
      });
    }
  });

  return { change, read, csrfToken };
})();
