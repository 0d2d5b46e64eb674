// The remote AE registry (/api/aes): the list, a new AE, removal, and a C-ECHO from the archive to each
// one, whose result is shown (and announced) in its row.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);

  function button(text, label, className, action) {
    const element = document.createElement("button");
    element.type = "button";
    element.className = className;
    element.textContent = text;
    element.setAttribute("aria-label", label);
    element.addEventListener("click", action);
    return element;
  }

  async function aes() {
    const answer = await lightbox.read("/api/aes");
    if (!answer.ok) { lightbox.fail(await lightbox.problem(answer)); return; }
    const list = await answer.json();
    const body = $("aes").querySelector("tbody");
    body.replaceChildren();
    for (const ae of list) {
      const row = body.insertRow();
      row.dataset.ae = ae.ae_title;
      for (const value of [ae.ae_title, ae.host, ae.port, ae.permissions.join(", ") || "nothing", ae.description]) {
        row.insertCell().textContent = value;
      }
      const result = document.createElement("span");
      result.className = "echo-result";
      result.setAttribute("aria-live", "polite");
      const echoCell = row.insertCell();
      echoCell.append(button("Echo", `Echo ${ae.ae_title}`, "secondary", () => echo(ae, result)), result);
      row.insertCell().append(button("Remove", `Remove ${ae.ae_title}`, "danger", () => remove(ae)));
    }
    $("aes").hidden = list.length === 0;
    $("no-aes").hidden = list.length > 0;
  }

  async function echo(ae, result) {
    result.className = "echo-result";
    result.textContent = "Echoing…";
    const answer = await lightbox.change("POST", `/api/aes/${encodeURIComponent(ae.ae_title)}/echo`);
    if (!answer.ok) {
      result.classList.add("bad");
      result.textContent = await lightbox.problem(answer);
      return;
    }
    const outcome = await answer.json();
    const time = `${Math.round(outcome.milliseconds)} ms`;
    result.classList.add(outcome.ok ? "good" : "bad");
    result.textContent = outcome.ok ? `OK, ${time}` : `Failed: ${outcome.error} (${time})`;
  }

  async function remove(ae) {
    const question = `Remove ${ae.ae_title} (${ae.host}:${ae.port}) from the registry? It can then no longer be a C-MOVE destination, nor ask more than an unknown AE may.`;
    if (!(await lightbox.confirm(question, "Remove"))) return;
    lightbox.say("");
    const answer = await lightbox.change("DELETE", `/api/aes/${encodeURIComponent(ae.ae_title)}`);
    if (!answer.ok) { lightbox.fail(await lightbox.problem(answer)); return; }
    await aes();
    $("aes-title").focus(); // its row is gone
    lightbox.say(`${ae.ae_title} removed.`);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("add-ae").addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = event.target;
      const body = {
        ae_title: form.elements.ae_title.value,
        host: form.elements.host.value.trim(),
        port: Number(form.elements.port.value),
        description: form.elements.description.value,
        permissions: [...form.querySelectorAll("input[name=permissions]:checked")].map((box) => box.value),
      };
      lightbox.say("");
      const answer = await lightbox.change("POST", "/api/aes", body);
      if (!answer.ok) { lightbox.fail(await lightbox.problem(answer)); return; }
      const added = await answer.json();
      form.reset();
      await aes();
      lightbox.say(`${added.ae_title} registered.`);
    });
    aes().catch((e) => lightbox.fail(`The archive cannot be reached: ${e.message}`));
  });
})();
