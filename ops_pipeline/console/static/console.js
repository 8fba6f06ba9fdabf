// ops-pipeline console: confirmations for actions, and live alerts (Server-Sent Events) without a reload.
"use strict";

document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});

// Every page: the Alerts badge counts alerts that arrived since the page loaded. On the alerts page, new
// rows are put at the top of the table (`#alerts tbody`) as they come.
(function liveAlerts() {
  const badge = document.getElementById("alerts-badge");
  if (!badge || !window.EventSource) return;
  const table = document.querySelector("#alerts tbody");
  const after = (table && table.dataset.last) || "";  // empty: from the newest alert at connect
  const source = new EventSource(`/console/alerts/stream?after=${encodeURIComponent(after)}`);
  let count = 0;
  source.addEventListener("alert", (event) => {
    const alert = JSON.parse(event.data);
    count += 1;
    badge.textContent = String(count);
    badge.hidden = false;
    if (table) table.insertAdjacentHTML("afterbegin", alert.html);
  });
})();
