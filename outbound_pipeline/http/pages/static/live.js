// Live campaign pages: poll the page's JSON twin and update the funnel, status, tier and recipients in place.
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const funnel = document.getElementById("funnel");
  const every = 3000;

  function text(id, value) {
    const el = document.getElementById(id);
    if (el && value !== undefined && value !== null) { el.textContent = value; }
  }

  function cell(value) {
    const td = document.createElement("td");
    td.textContent = value === null || value === undefined ? "" : value;
    return td;
  }

  function tier(t) {
    text("tier-used", t.used);
    text("tier-allowance", t.allowance === null ? "unlimited" : t.allowance);
    if (t.percent !== null) { text("tier-percent", t.percent); }
  }

  function detail() {
    const id = funnel.dataset.campaign;
    const query = new URLSearchParams(new FormData(document.getElementById("recipient-search")));
    fetch("/campaigns/" + encodeURIComponent(id) + "/live.json?" + query, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((r) => r.json()).then((data) => {
        Object.entries(data.funnel).forEach(([k, v]) => {
          const el = funnel.querySelector('[data-metric="' + k + '"]');
          if (el) { el.textContent = v; }
          const bar = funnel.querySelector('[data-metric-bar="' + k + '"]');
          if (bar) { bar.max = Math.max(data.funnel.sent, data.funnel.queued, 1); bar.value = v; }
        });
        const status = document.getElementById("status");
        status.textContent = data.campaign.status;
        status.className = "status " + data.campaign.status;
        text("progress", data.progress);
        Object.entries(data.contacts).forEach(([k, v]) => {
          const el = document.querySelector('[data-contacts="' + k + '"]');
          if (el) { el.textContent = v; }
        });
        text("as-of", data.as_of);
        tier(data.tier);
        const body = document.querySelector("#recipients tbody");
        body.replaceChildren(...data.recipients.contacts.map((r) => {
          const tr = document.createElement("tr");
          [r.name, r.phone, r.email, r.status, r.attempts, r.error_message].forEach((v) => tr.appendChild(cell(v)));
          tr.children[3].className = "status " + r.status;
          return tr;
        }));
        text("recipient-total", data.recipients.total + " matching");
      }).catch(() => {});
  }

  function listing() {
    fetch("/campaigns.json", { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((r) => r.json()).then((data) => {
        data.campaigns.forEach((c) => {
          const row = document.querySelector('#campaigns tr[data-id="' + c.id + '"]');
          if (!row) { return; }
          ["recipients", "sent", "engaged", "replied"].forEach((k) => { row.querySelector("." + k).textContent = c[k]; });
          const status = row.querySelector(".status");
          status.textContent = c.status;
          status.className = "status " + c.status;
        });
        tier(data.tier);
      }).catch(() => {});
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!form.classList.contains("lifecycle")) { return; }
    event.preventDefault();
    const response = await fetch(form.action, {
      method: "POST", body: new URLSearchParams(new FormData(form)), credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRF-Token": csrf },
    });
    const data = await response.json().catch(() => ({}));
    const p = document.createElement("p");
    p.className = response.ok ? "notice" : "error";
    p.textContent = response.ok ? data.message : (data.error || "refused");
    document.querySelector("main").prepend(p);
    detail();
  });

  if (funnel) {
    document.getElementById("recipient-search").addEventListener("submit", (event) => { event.preventDefault(); detail(); });
    setInterval(detail, every);
  } else if (document.getElementById("campaigns")) {
    setInterval(listing, every);
  }
})();
