// Users and their API tokens (/api/users): the list, a new user, and one user's role, state, password
// and tokens. A new token is shown once, as the API answers it once.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  let current = null; // the user whose details are open

  function when(value) { return value ? new Date(value).toLocaleString() : ""; }

  // A change: once it is made, redraw shows it and then done is announced
  async function call(method, url, body, redraw, done) {
    lightbox.say("");
    const answer = await lightbox.change(method, url, body);
    if (!answer.ok) {
      lightbox.fail(await lightbox.problem(answer));
      return null;
    }
    const result = await answer.json();
    await redraw(result);
    lightbox.say(done);
    return result;
  }

  async function users() {
    const answer = await lightbox.read("/api/users");
    if (!answer.ok) { lightbox.fail(await lightbox.problem(answer)); return; }
    const body = $("users").querySelector("tbody");
    body.replaceChildren();
    for (const user of await answer.json()) {
      const row = body.insertRow();
      for (const value of [user.name, user.role, user.disabled ? "disabled" : "active", when(user.created_at)]) {
        row.insertCell().textContent = value;
      }
      if (user.disabled) row.classList.add("muted");
      const manage = document.createElement("button");
      manage.type = "button";
      manage.className = "secondary";
      manage.textContent = "Manage";
      manage.setAttribute("aria-label", `Manage ${user.name}`);
      manage.addEventListener("click", () => open(user));
      row.insertCell().append(manage);
      if (current && current.name === user.name) show(user);
    }
  }

  function show(user) {
    current = user;
    $("user-name").textContent = user.name;
    $("user-role").value = user.role;
    $("user-state").textContent = user.disabled ? "disabled" : "active";
    $("toggle-state").textContent = user.disabled ? "Enable" : "Disable";
  }

  async function open(user) {
    show(user);
    $("new-token").hidden = true;
    $("user").hidden = false;
    await tokens();
    $("user-title").focus();
  }

  async function tokens() {
    const answer = await lightbox.read(`/api/users/${encodeURIComponent(current.name)}/tokens`);
    if (!answer.ok) { lightbox.fail(await lightbox.problem(answer)); return; }
    const list = await answer.json();
    const body = $("tokens").querySelector("tbody");
    body.replaceChildren();
    for (const token of list) {
      const row = body.insertRow();
      const expires = token.expires_at ? when(token.expires_at) : "never";
      for (const value of [token.label, when(token.created_at), expires, when(token.last_used_at) || "never", when(token.revoked_at)]) {
        row.insertCell().textContent = value;
      }
      const cell = row.insertCell();
      if (token.revoked_at) { row.classList.add("muted"); continue; }
      const revoke = document.createElement("button");
      revoke.type = "button";
      revoke.className = "danger";
      revoke.textContent = "Revoke";
      revoke.setAttribute("aria-label", `Revoke token ${token.label}`);
      revoke.addEventListener("click", () => revokeToken(token.label));
      cell.append(revoke);
    }
    $("tokens").hidden = list.length === 0;
    $("no-tokens").hidden = list.length > 0;
  }

  async function revokeToken(label) {
    const name = current.name;
    const question = `Revoke the token ${label} of ${name}? Whatever uses it is refused from then on.`;
    if (!(await lightbox.confirm(question, "Revoke"))) return;
    const url = `/api/users/${encodeURIComponent(name)}/tokens/${encodeURIComponent(label)}`;
    await call("DELETE", url, undefined, async () => {
      await tokens();
      $("tokens-title").focus(); // its button is gone
    }, `Token ${label} of ${name} revoked.`);
  }

  async function change(fields, done) {
    const url = `/api/users/${encodeURIComponent(current.name)}`;
    return call("PATCH", url, fields, async (user) => { show(user); await users(); }, done);
  }

  function wire() {
    $("add-user").addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = event.target;
      const name = form.elements.name.value.trim();
      const body = { name, role: form.elements.role.value, password: form.elements.password.value || null };
      await call("POST", "/api/users", body, async () => { form.reset(); await users(); }, `User ${name} added.`);
    });
    $("role-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const role = $("user-role").value;
      await change({ role }, `${current.name} is now ${role}.`);
    });
    $("toggle-state").addEventListener("click", async () => {
      const disabled = !current.disabled;
      await change({ disabled }, `${current.name} ${disabled ? "disabled" : "enabled"}.`);
    });
    $("password-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      if (await change({ password: $("user-password").value }, `Password of ${current.name} set.`)) {
        event.target.reset();
      }
    });
    $("token-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = event.target;
      const label = form.elements.label.value.trim();
      const days = form.elements.days.value ? Number(form.elements.days.value) : null;
      const url = `/api/users/${encodeURIComponent(current.name)}/tokens`;
      await call("POST", url, { label, days }, async (created) => {
        form.reset();
        await tokens();
        $("new-token-label").textContent = created.label;
        $("new-token-value").value = created.token;
        $("new-token").hidden = false;
        $("new-token-value").select();
      }, `Token ${label} created for ${current.name}: copy it now.`);
    });
    $("copy-token").addEventListener("click", () => lightbox.copy($("new-token-value")));
  }

  document.addEventListener("DOMContentLoaded", () => {
    wire();
    users().catch((e) => lightbox.fail(`The archive cannot be reached: ${e.message}`));
  });
})();
