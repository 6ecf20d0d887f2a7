// adagan studio, common.js: helpers, fetching and RenderSlot for the page (plain JavaScript, no libraries,
// no build step). The page loads common.js, charts.js, runs.js, generator.js, then studio.js (tabs, start).
// It polls the JSON endpoints of adagan/studio/app.py and shows rendered PNGs; charts are our own SVG.
"use strict";

const $ = (id) => document.getElementById(id);
const SVGNS = "http://www.w3.org/2000/svg";
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
const server = { max_images: 64 };  // /api/info, filled in at start (studio.js)
function setConn(ok) { $("conn").textContent = ok ? "" : "server unreachable: retrying"; }

async function errorText(res) {
  let msg = `${res.status} ${res.statusText}`;
  try { msg = (await res.json()).error || msg; } catch (e) { /* not JSON */ }
  return msg;
}

// JSON from the server; returns null when it has not changed since the last call with the same key.
async function getJSON(url, key) {
  let res;
  try { res = await fetch(url, { cache: "no-cache" }); } catch (e) { setConn(false); throw e; }
  setConn(true);
  if (!res.ok) throw new Error(await errorText(res));
  const tag = res.headers.get("ETag");
  if (key && tag && etags.get(key) === tag) return null;
  if (key && tag) etags.set(key, tag);
  return res.json();
}

// An <img> fed by a render endpoint: one request in flight, the newest wanted URL next (slider moves
// in between are skipped). The picture, its caption (the `show` callback of its request), render time
// and download link change together when a picture arrives; an error or `clear()` removes them all,
// so an old picture never stands under a new caption, and the image is hidden while it has no picture
// (no broken-image icon).
class RenderSlot {
  constructor(img, { ms = null, dl = null, onError = () => {}, zoom = () => 1 } = {}) {
    Object.assign(this, { img, ms, dl, onError, zoom, busy: false, pending: null, shown: null, blob: null, epoch: 0 });
    this.clear();
  }
  request(url, show = () => {}) {
    if (this.busy) { this.pending = { url, show }; return; }
    if (url === this.shown) return;
    this.busy = true;
    this.img.classList.add("loading");
    this.load(url, show).finally(() => {
      this.busy = false;
      this.img.classList.remove("loading");
      const next = this.pending;
      this.pending = null;
      if (next && next.url !== this.shown) this.request(next.url, next.show);
    });
  }
  // Forget the picture (and drop the answers of requests still in flight).
  clear() {
    this.epoch += 1;
    this.pending = null;
    this.shown = null;
    this.img.hidden = true;
    this.img.removeAttribute("src");
    delete this.img.dataset.url;
    if (this.blob) { URL.revokeObjectURL(this.blob); this.blob = null; }
    if (this.ms) this.ms.textContent = "";
    if (this.dl) { this.dl.hidden = true; this.dl.removeAttribute("href"); }
  }
  async load(url, show) {
    const epoch = this.epoch;
    try {
      const res = await fetch(url);
      if (epoch !== this.epoch) return;
      if (res.status === 503) { setTimeout(() => { if (epoch === this.epoch) this.request(url, show); }, 500); return; }
      if (!res.ok) {
        const msg = await errorText(res);
        if (epoch !== this.epoch) return;
        this.clear();
        this.onError(msg);
        return;
      }
      const blob = await res.blob();
      const ms = res.headers.get("X-Render-Ms");
      if (epoch !== this.epoch) return;
      const src = URL.createObjectURL(blob);
      await new Promise((resolve) => { this.img.onload = resolve; this.img.onerror = resolve; this.img.src = src; });
      if (this.blob) URL.revokeObjectURL(this.blob);
      this.blob = src;
      if (epoch !== this.epoch) { this.clear(); return; }
      this.img.style.width = `${this.img.naturalWidth * this.zoom()}px`;  // pixels stay sharp (img.pix)
      this.img.hidden = false;
      this.img.dataset.url = url;
      this.shown = url;
      if (this.ms) this.ms.textContent = ms === null ? "" : Number(ms) > 0 ? `rendered in ${Math.round(ms)} ms` : "cached";
      if (this.dl) { this.dl.href = url + "&download=1"; this.dl.hidden = false; }
      show();
      this.onError(null);
    } catch (e) {
      if (epoch !== this.epoch) return;
      setConn(false);
      this.clear();
      this.onError(String(e));
    }
  }
}

// Whole-number magnification so that small images (32x32 at the cpu preset) show at about `cell` pixels.
const zoomFor = (resolution, cell) => (resolution ? Math.max(1, Math.floor(cell / resolution)) : 1);
