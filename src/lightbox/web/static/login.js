// The login form: POST /api/login, then on to the page that asked for the login (a path of this site).
"use strict";

(function () {
  const form = document.getElementById("login");
  const error = document.getElementById("login-error");

  function show(message) {
    error.textContent = message;
    error.hidden = false;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const answer = await fetch("/api/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        credentials: "same-origin",
        body: JSON.stringify({ username: form.username.value, password: form.password.value }),
      });
      if (answer.ok) {
        window.location.assign(form.dataset.next || "/");
        return;
      }
      if (answer.status === 429) {
        const wait = answer.headers.get("Retry-After") || "a few";
        show(`Too many failed logins. Try again in ${wait} seconds.`);
      } else if (answer.status === 401 || answer.status === 400) {
        show("Wrong user name or password, or the account is disabled.");
      } else {
        show(`The archive could not log you in (HTTP ${answer.status}).`);
      }
    } catch (failure) {
      show("The archive cannot be reached. Check the network and try again.");
    } finally {
      button.disabled = false;
    }
  });
})();
