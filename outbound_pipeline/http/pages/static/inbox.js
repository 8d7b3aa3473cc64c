// The review inbox: one click per decision (forms posted with fetch), j/k/a/r/e shortcuts, counts kept current.
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const flash = document.getElementById("flash");
  let current = 0;

  function cards() { return Array.from(document.querySelectorAll("#cards .card")); }

  function say(text, ok) {
    const p = document.createElement("p");
    p.className = ok ? "notice" : "error";
    p.textContent = text;
    flash.replaceChildren(p);
  }

  function focus(index) {
    const all = cards();
    if (!all.length) { return; }
    current = Math.max(0, Math.min(index, all.length - 1));
    all.forEach((c, i) => c.classList.toggle("current", i === current));
    all[current].scrollIntoView({ block: "nearest" });
  }

  function setCounts(touchKey, counts) {
    const row = document.querySelector('tr[data-touch-key="' + touchKey + '"]');
    if (row && counts) {
      row.querySelector(".waiting").textContent = counts.waiting;
      row.querySelector(".decided").textContent = counts.drafts - counts.waiting;
      const hint = row.querySelector(".hint");
      if (hint) { hint.remove(); }
    }
  }

  function refreshTotal() {
    fetch("/inbox/counts.json", { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((r) => r.json()).then((data) => { document.getElementById("waiting-total").textContent = data.waiting; })
      .catch(() => {});
  }

  async function post(form, extra) {
    const body = new URLSearchParams(new FormData(form));
    if (extra) { Object.entries(extra).forEach(([k, v]) => body.set(k, v)); }
    const response = await fetch(form.action, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRF-Token": csrf },
    });
    let data = {};
    try { data = await response.json(); } catch (e) { data = { error: "unexpected answer " + response.status }; }
    return { ok: response.ok, data: data };
  }

  async function decide(card, decision, form) {
    const target = form || card.querySelector("form.decide");
    const result = await post(target, form ? null : { decision: decision });
    if (!result.ok) { say(result.data.error || "refused", false); return; }
    say(result.data.message, true);
    setCounts(card.dataset.touchKey, result.data.counts);
    const index = cards().indexOf(card);
    card.remove();
    refreshTotal();
    focus(index);
  }

  function openEditor(card) {
    const editor = card.querySelector("form.editor");
    editor.hidden = false;
    const area = editor.querySelector("textarea");
    area.focus();
    area.setSelectionRange(area.value.length, area.value.length);
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    const card = form.closest(".card");
    if (form.classList.contains("decide")) {
      event.preventDefault();
      await decide(card, event.submitter ? event.submitter.value : "approve");
    } else if (form.classList.contains("editor")) {
      event.preventDefault();
      await decide(card, "edit", form);
    } else if (form.classList.contains("approve-rest")) {
      event.preventDefault();
      const result = await post(form);
      if (!result.ok) { say(result.data.error || "refused", false); return; }
      say(result.data.message, true);
      (result.data.draft_ids || []).forEach((id) => {
        const done = document.getElementById("draft-" + id);
        if (done) { done.remove(); }
      });
      setCounts(form.closest("tr").dataset.touchKey, result.data.counts);
      refreshTotal();
      focus(current);
    }
  });

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) { return; }
    const card = button.closest(".card");
    if (button.classList.contains("edit")) { openEditor(card); }
    if (button.classList.contains("cancel")) { card.querySelector("form.editor").hidden = true; }
    if (card) { focus(cards().indexOf(card)); }
  });

  document.addEventListener("keydown", (event) => {
    const typing = event.target.matches("input, textarea, select");
    if (typing) {
      if (event.target.matches("textarea") && event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        event.target.form.requestSubmit();
      } else if (event.key === "Escape") {
        const editor = event.target.closest("form.editor");
        if (editor) { editor.hidden = true; event.target.blur(); }
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    const card = cards()[current];
    if (event.key === "j") { focus(current + 1); }
    else if (event.key === "k") { focus(current - 1); }
    else if (event.key === "a" && card) { decide(card, "approve"); }
    else if (event.key === "r" && card) { decide(card, "reject"); }
    else if (event.key === "e" && card) { event.preventDefault(); openEditor(card); }
  });

  focus(0);
})();
