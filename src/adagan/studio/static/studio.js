// adagan studio: the page's behaviour in plain JavaScript (no libraries, no build step).
// It polls the JSON endpoints of adagan/studio/app.py and shows rendered PNGs; charts are our own SVG.
"use strict";

const $ = (id) => document.getElementById(id);
const SVGNS = "http://www.w3.org/2000/svg";
const COLORS = ["#2160c4", "#d4572a", "#1b7f3b", "#8a3ffc", "#9a6700"];
const POLL_MS = 3000;

// Build an element without innerHTML (run names come from the file system and are never parsed as HTML).
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}
function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}
const filesUrl = (rel) => "/files/" + rel.split("/").map(encodeURIComponent).join("/");
const query = (params) => new URLSearchParams(Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== "")).toString();

function fmt(v, digits = 3) {
  if (v === null || v === undefined || Number.isNaN(v)) return "-";
  if (v !== 0 && (Math.abs(v) >= 1e5 || Math.abs(v) < 1e-3)) return v.toExponential(1);
  return String(Number(v.toPrecision(digits)));
}
function fmtTime(s) {
  if (s === null || s === undefined) return "-";
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return `${h}h${String(m).padStart(2, "0")}m${String(sec).padStart(2, "0")}s`;
}
function fmtAgo(s) {
  if (s === null || s === undefined) return "-";
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

// -- fetching ------------------------------------------------------------------------------------------

const etags = new Map();
function setConn(ok) { $("conn").textContent = ok ? "" : "server unreachable: retrying"; }

// JSON from the server; returns null when it has not changed since the last call with the same key.
async function getJSON(url, key) {
  let res;
  try { res = await fetch(url, { cache: "no-cache" }); } catch (e) { setConn(false); throw e; }
  setConn(true);
  if (!res.ok) {
    let msg = `${res.status} ${res.statusText}`;
    try { msg = (await res.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  const tag = res.headers.get("ETag");
  if (key && tag && etags.get(key) === tag) return null;
  if (key && tag) etags.set(key, tag);
  return res.json();
}

// An <img> fed by a render endpoint: one request in flight, the newest wanted URL next (slider moves
// in between are skipped), errors to a callback, render time to a caption.
class RenderSlot {
  constructor(img, msNode, dlNode, onError, zoom = () => 1) {
    Object.assign(this, { img, msNode, dlNode, onError, zoom, busy: false, pending: null, shown: null, blob: null });
  }
  request(url) {
    if (this.dlNode) this.dlNode.href = url + "&download=1";
    if (this.busy) { this.pending = url; return; }
    if (url === this.shown) return;
    this.busy = true;
    this.img.classList.add("loading");
    this.load(url).finally(() => {
      this.busy = false;
      this.img.classList.remove("loading");
      const next = this.pending;
      this.pending = null;
      if (next && next !== this.shown) this.request(next);
    });
  }
  async load(url) {
    try {
      const res = await fetch(url);
      if (res.status === 503) { setTimeout(() => this.request(url), 500); return; }
      if (!res.ok) {
        let msg = `${res.status} ${res.statusText}`;
        try { msg = (await res.json()).error || msg; } catch (e) { /* not JSON */ }
        this.onError(msg);
        return;
      }
      const blob = await res.blob();
      const ms = res.headers.get("X-Render-Ms");
      if (this.blob) URL.revokeObjectURL(this.blob);
      this.blob = URL.createObjectURL(blob);
      await new Promise((resolve) => { this.img.onload = resolve; this.img.onerror = resolve; this.img.src = this.blob; });
      this.img.style.width = `${this.img.naturalWidth * this.zoom()}px`;  // pixels stay sharp (img.pix)
      this.img.dataset.url = url;
      this.shown = url;
      if (this.msNode) this.msNode.textContent = ms === null ? "" : Number(ms) > 0 ? `rendered in ${Math.round(ms)} ms` : "cached";
      this.onError(null);
    } catch (e) {
      setConn(false);
      this.onError(String(e));
    }
  }
}

// Whole-number magnification so that small images (32x32 at the cpu preset) show at about `cell` pixels.
const zoomFor = (resolution, cell) => (resolution ? Math.max(1, Math.floor(cell / resolution)) : 1);

// -- charts --------------------------------------------------------------------------------------------

function niceTicks(lo, hi, n = 4) {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

// A line chart of series [{name, xs, ys}] against kimg; hline: a dashed reference value (ADA's target).
function drawChart(series, { title, hline = null } = {}) {
  const W = 300, H = 170, L = 42, R = 8, T = 22, B = 20;
  const box = el("div", { class: "chart" });
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  box.append(root);
  const pts = series.flatMap((s) => s.xs.map((x, i) => [x, s.ys[i]])).filter(([x, y]) => x !== null && y !== null);
  root.append(svg("text", { x: 4, y: 13, "font-size": 11, "font-weight": 600 }, title));
  let lx = 12 + title.length * 7.2;  // text is not measurable before it is on the page: ~7 px a bold character
  series.forEach((s, i) => {
    if (series.length < 2) return;
    root.append(svg("rect", { x: lx, y: 5, width: 8, height: 8, fill: COLORS[i % COLORS.length] }));
    const label = s.name.split("/").slice(-2).join("/");
    root.append(svg("text", { x: lx + 11, y: 13, "font-size": 10, fill: "#444" }, label));
    lx += 20 + label.length * 6;
  });
  if (!pts.length) {
    root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", "font-size": 11, fill: "#999" }, "no data yet"));
    return box;
  }
  let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  let ys = pts.map((p) => p[1]);
  if (hline !== null) ys = ys.concat([hline]);
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x1 === x0) { x0 -= 0.5; x1 += 0.5; }
  const pad = (y1 - y0) * 0.08 || Math.abs(y1) * 0.1 || 0.5;
  y0 -= pad; y1 += pad;
  const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y) => H - B - ((y - y0) / (y1 - y0)) * (H - T - B);
  for (const t of niceTicks(y0, y1)) {
    root.append(svg("line", { x1: L, x2: W - R, y1: sy(t), y2: sy(t), stroke: "#eceff2" }));
    root.append(svg("text", { x: L - 4, y: sy(t) + 3, "text-anchor": "end", "font-size": 9, fill: "#666" }, fmt(t, 3)));
  }
  for (const t of niceTicks(x0, x1, 5)) {
    root.append(svg("text", { x: sx(t), y: H - 6, "text-anchor": "middle", "font-size": 9, fill: "#666" }, fmt(t, 3)));
  }
  root.append(svg("line", { x1: L, x2: L, y1: T, y2: H - B, stroke: "#bbb" }));
  root.append(svg("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: "#bbb" }));
  if (hline !== null) {
    root.append(svg("line", { x1: L, x2: W - R, y1: sy(hline), y2: sy(hline), stroke: "#999", "stroke-dasharray": "4 3" }));
  }
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    let seg = [];
    const flush = () => {
      if (seg.length > 1) root.append(svg("polyline", { points: seg.join(" "), fill: "none", stroke: color, "stroke-width": 1.5 }));
      seg = [];
    };
    s.xs.forEach((x, j) => {
      const y = s.ys[j];
      if (x === null || y === null) { flush(); return; }
      seg.push(`${sx(x).toFixed(1)},${sy(y).toFixed(1)}`);
      if (s.xs.length < 30) root.append(svg("circle", { cx: sx(x), cy: sy(y), r: 2, fill: color }));
    });
    flush();
  });
  // Hover: the values at the nearest kimg.
  const tip = el("div", { class: "tip" });
  const cursor = svg("line", { y1: T, y2: H - B, stroke: "#888", visibility: "hidden" });
  root.append(cursor);
  box.append(tip);
  root.addEventListener("mousemove", (ev) => {
    const rect = root.getBoundingClientRect();
    const x = x0 + ((ev.clientX - rect.left) * (W / rect.width) - L) / (W - L - R) * (x1 - x0);
    const xs = series[0].xs;
    let best = 0;
    xs.forEach((v, j) => { if (v !== null && Math.abs(v - x) < Math.abs(xs[best] - x)) best = j; });
    cursor.setAttribute("x1", sx(xs[best])); cursor.setAttribute("x2", sx(xs[best]));
    cursor.setAttribute("visibility", "visible");
    tip.textContent = `kimg ${fmt(xs[best])}: ` + series.map((s) => `${s.name.split("/").pop()} ${fmt(s.ys[best])}`).join("  ");
  });
  root.addEventListener("mouseleave", () => { cursor.setAttribute("visibility", "hidden"); tip.textContent = ""; });
  return box;
}

const PANELS = [
  { title: "Losses", keys: ["Loss/G/loss", "Loss/D/loss"] },
  { title: "Augment p", keys: ["Progress/augment"] },
  { title: "r_t (target dashed)", keys: ["Progress/r_t"], target: true },
  { title: "D scores", keys: ["Loss/scores/real", "Loss/scores/fake", "Loss/lecam/ema_real", "Loss/lecam/ema_fake"] },
  { title: "Regularization", keys: ["Loss/r1_penalty", "Loss/pl_penalty", "Loss/lecam/penalty"] },
  { title: "sec/kimg", keys: ["Timing/sec_per_kimg"] },
];

// -- Runs tab ------------------------------------------------------------------------------------------

const runs = { list: [], panes: [null, null], views: [null, null] };

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
      el("td", { class: "num" }, fmt(s.r_t)), el("td", {}, fmtAgo(s.updated_s_ago)),
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
  v.gridImg = el("img", { class: "pix", alt: "generated grid" });
  v.follow = true;  // the slider follows the newest grid until moved back
  v.gridSlider.addEventListener("input", () => { v.follow = Number(v.gridSlider.value) === Number(v.gridSlider.max); showGrid(v); });
  v.openGen = el("button", { onclick: () => openInGenerator(v) }, "open newest snapshot in Generator");
  v.augP = el("input", { type: "range", min: 0, max: 1, step: 0.001, value: 0, "aria-label": "augment p" });
  v.augOut = el("output", {}, "0");
  v.augImg = el("img", { class: "pix", alt: "augmented reals" });
  v.augMs = el("span", { class: "muted" });
  v.augErr = el("div", { class: "error", hidden: true });
  const resolution = () => (v.data && v.data.config.G ? v.data.config.G.img_resolution : null);
  v.augSlot = new RenderSlot(v.augImg, v.augMs, null, (msg) => { v.augErr.hidden = !msg; v.augErr.textContent = msg || ""; },
    () => zoomFor(resolution(), 64));
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
  if (!grids.length) { v.gridLabel.textContent = "no grids yet"; v.gridImg.removeAttribute("src"); return; }
  const i = Math.min(Number(v.gridSlider.value), grids.length - 1);
  const g = grids[i];
  v.gridLabel.textContent = `fakes at ${g.label} (${i + 1} of ${grids.length})`;
  const src = filesUrl(g.file);
  if (v.gridImg.getAttribute("src") !== src) v.gridImg.src = src;
}

function renderAugment(v) {
  v.augSlot.request("/api/augment?" + query({ id: v.id, p: Number(v.augP.value).toFixed(3) }));
}

function updatePane(v, d) {
  v.data = d;
  const s = d.status;
  v.title.textContent = d.id === "." ? d.name : d.id;
  v.badge.className = `state ${s.state}`;
  v.badge.textContent = s.state;
  v.status.textContent = [
    `kimg ${fmt(s.kimg, 4)}${s.target_kimg ? " / " + fmt(s.target_kimg, 4) : ""}`, `sec/kimg ${fmt(s.sec_per_kimg)}`,
    `ETA ${fmtTime(s.eta_s)}`, `augment p ${fmt(s.p)}`, `r_t ${fmt(s.r_t)}`,
    `${s.aug || "?"} ${s.augpipe || ""}`, `data ${s.data || "?"}`, `updated ${fmtAgo(s.updated_s_ago)}`].join("  \u00b7  ");
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
    if (!v.augImg.getAttribute("src") && !v.augSlot.busy) renderAugment(v);
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
      if (d) updatePane(v, d);
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
      const ids = new Set(runs.list.map((r) => r.id));
      runs.panes = runs.panes.map((id) => (id && ids.has(id) ? id : null));
      if (!runs.panes[0] && runs.list.length) {
        const live = runs.list.find((r) => r.status.state === "running");
        runs.panes[0] = (live || runs.list[0]).id;
      }
      renderRunsTable();
    }
  } catch (e) { /* shown by setConn */ }
  await pollPanes();
}

function openInGenerator(v) {
  const snaps = v.data ? v.data.snapshots : [];
  if (!snaps.length) return;
  gen.wanted = snaps[snaps.length - 1].file;
  switchTab("generator");
}

// -- Generator tab -------------------------------------------------------------------------------------

const gen = { net: null, info: null, pins: [], wanted: null, listed: null };
function genError(msg) { $("gen-error").hidden = !msg; $("gen-error").textContent = msg || ""; }
const genZoom = () => zoomFor(gen.info && gen.info.resolution, 96);
const slots = {
  grid: new RenderSlot($("grid"), $("grid-ms"), $("grid-dl"), genError, genZoom),
  mix: new RenderSlot($("mix"), $("mix-ms"), $("mix-dl"), genError, genZoom),
  strip: new RenderSlot($("strip"), $("strip-ms"), $("strip-dl"), genError, genZoom),
};

async function loadNetworks() {
  let d;
  try { d = await getJSON("/api/networks"); } catch (e) { genError(String(e.message || e)); return; }
  const select = $("net");
  const before = select.value;
  const listed = JSON.stringify(d.networks);
  if (listed === gen.listed && gen.net && !gen.wanted) return;  // nothing new: leave the open dropdown alone
  gen.listed = listed;
  select.replaceChildren();
  const groups = new Map();
  for (const n of d.networks) {
    const key = n.run === null ? "other files" : n.run === "." ? "this run" : n.run;
    if (!groups.has(key)) groups.set(key, el("optgroup", { label: key }));
    groups.get(key).append(el("option", { value: n.file }, n.label));
  }
  select.append(...groups.values());
  if (!d.networks.length) { genError("No network snapshots under this folder yet."); return; }
  const files = d.networks.map((n) => n.file);
  const pick = [gen.wanted, before, d.first, files[0]].find((f) => f && files.includes(f));
  gen.wanted = null;
  select.value = pick;
  if (pick !== gen.net) await selectNetwork(pick);
}

async function selectNetwork(file) {
  gen.net = file;
  gen.info = null;
  $("net-info").textContent = "loading\u2026";
  try {
    gen.info = await getJSON("/api/network?" + query({ file }));
  } catch (e) {
    $("net-info").textContent = "";
    genError(`${file}: ${e.message || e}`);
    for (const id of ["grid", "mix", "strip"]) { $(id).removeAttribute("src"); slots[id].shown = null; }
    return;
  }
  genError(null);
  const i = gen.info;
  $("net-info").textContent = `${i.resolution}x${i.resolution}, ${i.channels} ch, ${i.num_ws} ws` +
    `${i.c_dim ? `, ${i.c_dim} classes` : ""}${i.kimg !== null ? `, ${fmt(i.kimg, 4)} kimg` : ""}, ${(i.params / 1e6).toFixed(2)} M params`;
  for (const id of ["mix-lo", "mix-hi"]) {
    $(id).max = i.num_ws - 1;
    if (Number($(id).value) > i.num_ws - 1) $(id).value = i.num_ws - 1;
  }
  $("class-label").hidden = !i.c_dim;
  if (i.c_dim && $("class").options.length !== i.c_dim) {
    $("class").replaceChildren(...Array.from({ length: i.c_dim }, (_, k) => el("option", { value: k }, String(k))));
  }
  renderAll();
}

function common() {
  return { file: gen.net, psi: Number($("psi").value).toFixed(2), noise: $("noise").value,
    class: gen.info && gen.info.c_dim ? $("class").value : null };
}
function seedList() {
  const first = Math.max(0, Math.floor(Number($("seed0").value) || 0)), n = Number($("count").value);
  return Array.from({ length: n }, (_, k) => first + k);
}
function gridCols() { return Math.min(8, Number($("count").value)); }

function renderAll() {
  if (!gen.net || !gen.info) return;
  const seeds = seedList();
  $("grid-caption").textContent = `${seeds[0]}\u2013${seeds[seeds.length - 1]}, \u03c8 ${Number($("psi").value).toFixed(2)}`;
  slots.grid.request("/api/render/grid?" + query({ ...common(), seeds: seeds.join(","), cols: gridCols() }));
  const pins = gen.pins;
  $("pins").replaceChildren(...pins.map((s) => el("button", { class: "pin", title: "unpin", onclick: () => unpin(s) }, `${s} \u00d7`)));
  const two = pins.length >= 2;
  $("mix-fig").hidden = !two;
  $("strip-fig").hidden = !two;
  $("pin-hint").hidden = two;
  if (!two) return;
  const lo = Math.min(Number($("mix-lo").value), Number($("mix-hi").value));
  const hi = Math.max(Number($("mix-lo").value), Number($("mix-hi").value));
  $("mix-caption").textContent = `of seeds ${pins.join(", ")}: each row takes layers ${lo}\u2013${hi} from its column`;
  slots.mix.request("/api/render/mix?" + query({ ...common(), rows: pins.join(","), cols: pins.join(","), styles: `${lo}-${hi}` }));
  $("strip-caption").textContent = `${pins.join(" \u2192 ")}, ${$("steps").value} steps between seeds`;
  slots.strip.request("/api/render/strip?" + query({ ...common(), seeds: pins.join(","), steps: $("steps").value }));
}

function unpin(seed) { gen.pins = gen.pins.filter((s) => s !== seed); renderAll(); }

$("grid").addEventListener("click", (ev) => {
  const img = ev.currentTarget, seeds = seedList(), cols = gridCols();
  const rows = Math.ceil(seeds.length / cols);
  const c = Math.floor((ev.offsetX / img.clientWidth) * cols), r = Math.floor((ev.offsetY / img.clientHeight) * rows);
  const seed = seeds[r * cols + c];
  if (seed === undefined || gen.pins.includes(seed)) return;
  gen.pins = gen.pins.concat([seed]).slice(-6);
  renderAll();
});
$("net").addEventListener("change", () => selectNetwork($("net").value));
$("psi").addEventListener("input", () => { $("psi-out").textContent = Number($("psi").value).toFixed(2); renderAll(); });
for (const id of ["seed0", "count", "noise", "class"]) $(id).addEventListener("change", renderAll);
for (const id of ["mix-lo", "mix-hi", "steps"]) {
  $(id).addEventListener("input", () => { $(id + "-out").textContent = $(id).value; renderAll(); });
}
$("prev").addEventListener("click", () => { $("seed0").value = Math.max(0, Number($("seed0").value) - Number($("count").value)); renderAll(); });
$("next").addEventListener("click", () => { $("seed0").value = Number($("seed0").value) + Number($("count").value); renderAll(); });
$("random").addEventListener("click", () => { $("seed0").value = Math.floor(Math.random() * 1e6); renderAll(); });
$("clear-pins").addEventListener("click", () => { gen.pins = []; renderAll(); });

// -- tabs and polling ----------------------------------------------------------------------------------

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
  $("root").textContent = info.root || "";
  const fromHash = location.hash.replace("#", "");
  switchTab(["runs", "generator"].includes(fromHash) ? fromHash : info.network ? "generator" : "runs");
  setTimeout(tick, POLL_MS);
})();
