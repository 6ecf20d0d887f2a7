// adagan studio, runs.js: the Runs tab (the runs table and up to two run panes side by side).
"use strict";

const runs = { list: [], panes: [null, null], views: [null, null], received: 0 };

// Seconds since a run last wrote: the server's answer advanced by the time since it came (a finished
// run's answer does not change, so its ETag stays put and the page counts on).
const ago = (s, received) => (s.updated_s_ago === null ? null : s.updated_s_ago + (Date.now() - received) / 1000);

function renderRunsTable() {
  const body = $("runs-table").querySelector("tbody");
  body.replaceChildren();
  $("runs-empty").hidden = runs.list.length > 0;
  for (const r of runs.list) {
    const s = r.status;
    const kimg = s.kimg === null ? "-" : `${fmt(s.kimg, 4)}${s.target_kimg ? " / " + fmt(s.target_kimg, 4) : ""}`;
    const row = el("tr", { class: runs.panes.includes(r.id) ? "selected" : "", "data-run": r.id },
      el("td", {}, r.id === "." ? r.name : r.id),
      el("td", {}, el("span", { class: `state ${s.state}` }, s.state)),
      el("td", { class: "num" }, kimg), el("td", { class: "num" }, fmt(s.sec_per_kimg)),
      el("td", { class: "num" }, fmtTime(s.eta_s)), el("td", { class: "num" }, fmt(s.p)),
      el("td", { class: "num" }, fmt(s.r_t)), el("td", {}, fmtAgo(ago(s, runs.received))),
      el("td", {},
        el("button", { onclick: () => showRun(0, r.id), title: "show on the left" }, "left"), " ",
        el("button", { onclick: () => showRun(1, r.id), title: "compare on the right" }, "right")));
    body.append(row);
  }
}

function showRun(slot, id) {
  runs.panes[slot] = id;
  etags.delete(`run${slot}`);
  pollPanes();
  renderRunsTable();
}

function makePane(slot, id) {
  const v = { id, slot };
  v.title = el("span");
  v.badge = el("span", { class: "state" });
  v.status = el("div");
  v.lastLog = el("div", { class: "muted" });
  v.error = el("div", { class: "error", hidden: true });
  v.charts = el("div", { class: "charts" });
  v.gridLabel = el("span");
  v.gridSlider = el("input", { type: "range", min: 0, max: 0, value: 0, "aria-label": "grid at kimg" });
  v.gridImg = el("img", { class: "pix", alt: "generated grid", hidden: true });
  v.follow = true;  // the slider follows the newest grid until moved back
  v.gridSlider.addEventListener("input", () => { v.follow = Number(v.gridSlider.value) === Number(v.gridSlider.max); showGrid(v); });
  v.openGen = el("button", { onclick: () => openInGenerator(v) }, "open newest snapshot in Generator");
  v.augP = el("input", { type: "range", min: 0, max: 1, step: 0.001, value: 0, "aria-label": "augment p" });
  v.augOut = el("output", {}, "0");
  v.augImg = el("img", { class: "pix", alt: "augmented reals" });
  v.augMs = el("span", { class: "muted" });
  v.augErr = el("div", { class: "error", hidden: true });
  const resolution = () => (v.data && v.data.config.G ? v.data.config.G.img_resolution : null);
  v.augSlot = new RenderSlot(v.augImg, { ms: v.augMs, zoom: () => zoomFor(resolution(), 64),
    onError: (msg) => { v.augErr.hidden = !msg; v.augErr.textContent = msg || ""; } });
  v.gridImg.addEventListener("load", () => { v.gridImg.style.width = `${v.gridImg.naturalWidth * zoomFor(resolution(), 64)}px`; });
  v.augP.addEventListener("input", () => { v.augTouched = true; v.augOut.textContent = fmt(Number(v.augP.value)); renderAugment(v); });
  const close = slot === 1 ? el("button", { class: "close", title: "close", onclick: () => showRun(1, null) }, "\u00d7") : null;
  v.node = el("div", { class: "pane", "data-run": id },
    el("h2", {}, v.title, v.badge, close), v.status, v.lastLog, v.error,
    el("h3", {}, "Curves"), v.charts,
    el("h3", {}, "Grids (fixed latents)"),
    el("div", { class: "grid-view" }, el("div", { class: "row" }, v.gridLabel), v.gridSlider, v.gridImg),
    el("div", { class: "row" }, v.openGen),
    el("h3", {}, "What D sees: reals, then augmented copies at p = ", v.augOut, " ", v.augMs),
    v.augP, v.augErr, v.augImg);
  return v;
}

function showGrid(v) {
  const grids = v.data ? v.data.grids : [];
  v.gridSlider.hidden = !grids.length;
  if (!grids.length) {  // no <img> without a picture: it would show a broken-image icon
    v.gridLabel.textContent = "no grids yet";
    v.gridImg.hidden = true;
    v.gridImg.removeAttribute("src");
    return;
  }
  v.gridImg.hidden = false;
  const i = Math.min(Number(v.gridSlider.value), grids.length - 1);
  const g = grids[i];
  v.gridLabel.textContent = `fakes at ${g.label} (${i + 1} of ${grids.length})`;
  const src = filesUrl(g.file);
  if (v.gridImg.getAttribute("src") !== src) v.gridImg.src = src;
}

function renderAugment(v) {
  v.augSlot.request("/api/augment?" + query({ id: v.id, p: Number(v.augP.value).toFixed(3) }));
}

function paneStatus(v) {
  const s = v.data.status;
  v.status.textContent = [
    `kimg ${fmt(s.kimg, 4)}${s.target_kimg ? " / " + fmt(s.target_kimg, 4) : ""}`, `sec/kimg ${fmt(s.sec_per_kimg)}`,
    `ETA ${fmtTime(s.eta_s)}`, `augment p ${fmt(s.p)}`, `r_t ${fmt(s.r_t)}`, `${s.aug || "?"} ${s.augpipe || ""}`,
    `data ${s.data || "?"}`, `updated ${fmtAgo(ago(s, v.received))}`].join("  \u00b7  ");
}

function updatePane(v, d) {
  v.data = d;
  v.received = Date.now();
  const s = d.status;
  v.title.textContent = d.id === "." ? d.name : d.id;
  v.badge.className = `state ${s.state}`;
  v.badge.textContent = s.state;
  paneStatus(v);
  v.lastLog.textContent = s.last_log || "";
  const target = d.config && d.config.augment && typeof d.config.augment.target === "number" ? d.config.augment.target : 0.6;
  const charts = [];
  for (const p of PANELS) {
    const series = p.keys.filter((k) => k in d.series).map((k) => ({ name: k, xs: d.kimg, ys: d.series[k] }));
    if (series.length) charts.push(drawChart(series, { title: p.title, hline: p.target ? target : null }));
  }
  // The leak measure (leakNk): its headline and colour/geometry groups in one chart; its components stay in
  // metric-leakNk.jsonl. Every other result gets a chart of its own.
  const leak = {};
  for (const [name, pts] of Object.entries(d.metrics)) {
    const series = { name, xs: pts.map((p) => p[0]), ys: pts.map((p) => p[1]) };
    const m = /^(leak\d+k)(_colour|_geometry)?$/.exec(name);
    if (m) (leak[m[1]] = leak[m[1]] || []).push(series);
    else if (!/^leak\d+k_/.test(name)) charts.push(drawChart([series], { title: `metric ${name}` }));
  }
  for (const [name, series] of Object.entries(leak)) {
    charts.push(drawChart(series, { title: `augmentation leak ${name} (0 = like the reals)` }));
  }
  v.charts.replaceChildren(...charts);
  v.gridSlider.max = Math.max(0, d.grids.length - 1);
  if (v.follow) v.gridSlider.value = v.gridSlider.max;
  showGrid(v);
  v.openGen.disabled = !d.snapshots.length;
  if (!v.augTouched) {
    v.augP.value = s.p || 0;
    v.augOut.textContent = fmt(Number(v.augP.value));
    if (!v.augSlot.shown && !v.augSlot.busy) renderAugment(v);
  }
}

async function pollPanes() {
  const box = $("panes");
  for (const slot of [0, 1]) {
    const id = runs.panes[slot];
    let v = runs.views[slot];
    if (!id) {
      if (v) { v.node.remove(); runs.views[slot] = null; }
      continue;
    }
    if (!v || v.id !== id) {
      if (v) v.node.remove();
      v = runs.views[slot] = makePane(slot, id);
      etags.delete(`run${slot}`);
      if (slot === 0) box.prepend(v.node); else box.append(v.node);
    }
    try {
      const d = await getJSON("/api/run?" + query({ id }), `run${slot}`);
      v.error.hidden = true;
      if (d) updatePane(v, d); else if (v.data) paneStatus(v);
    } catch (e) {
      v.error.hidden = false;
      v.error.textContent = String(e.message || e);
    }
  }
}

async function pollRuns() {
  try {
    const d = await getJSON("/api/runs", "runs");
    if (d) {
      runs.list = d.runs;
      runs.received = Date.now();
      const ids = new Set(runs.list.map((r) => r.id));
      runs.panes = runs.panes.map((id) => (id && ids.has(id) ? id : null));
      if (!runs.panes[0] && runs.list.length) {
        const live = runs.list.find((r) => r.status.state === "running");
        runs.panes[0] = (live || runs.list[0]).id;
      }
    }
    renderRunsTable();  // also when unchanged: "updated ... ago" counts on
  } catch (e) { /* shown by setConn */ }
  await pollPanes();
}

function openInGenerator(v) {
  const snaps = v.data ? v.data.snapshots : [];
  if (!snaps.length) return;
  gen.wanted = snaps[snaps.length - 1].file;
  switchTab("generator");
}
