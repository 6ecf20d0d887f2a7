// adagan studio, studio.js: tabs, polling and the start of the page (loaded last: every tab's code is
// defined by then).
"use strict";

let tab = null;
function switchTab(name) {
  tab = name;
  for (const t of ["runs", "generator"]) {
    $(`page-${t}`).hidden = t !== name;
    $(`tab-${t}`).classList.toggle("active", t === name);
  }
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  if (name === "generator") loadNetworks(); else pollRuns();
}
for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => switchTab(b.dataset.tab));
window.addEventListener("hashchange", () => {
  const name = location.hash.replace("#", "");
  if (["runs", "generator"].includes(name) && name !== tab) switchTab(name);
});

async function tick() {
  if (document.visibilityState === "visible") {
    if (tab === "runs") await pollRuns();
    else if (tab === "generator" && !slots.grid.busy) await loadNetworks();
  }
  setTimeout(tick, tab === "runs" ? POLL_MS : 4 * POLL_MS);
}

(async function start() {
  let info = {};
  try { info = await getJSON("/api/info"); } catch (e) { /* shown by setConn */ }
  Object.assign(server, info);
  $("root").textContent = info.root || "";
  $("root").title = info.root || "";
  buildCounts();
  const fromHash = location.hash.replace("#", "");
  switchTab(["runs", "generator"].includes(fromHash) ? fromHash : info.network ? "generator" : "runs");
  setTimeout(tick, POLL_MS);
})();
