// adagan studio, generator.js: the Generator tab. Every request stays within the server's limit of
// images per picture (/api/info max_images): the seed count, the pins, and the interpolation steps
// ((pins - 1) x steps + 1 frames) are capped to it, and seeds to 0..2^32-1 as `adagan generate` takes them.
"use strict";

const MAX_SEED = 2 ** 32 - 1;
const COUNTS = [4, 8, 16, 32, 64];
const MAX_STEPS = 16;
const gen = { net: null, info: null, pins: [], wanted: null, listed: null, loading: null, errors: {} };

// Each source of error (the network, each picture) keeps its own message until it succeeds again.
function genError(key, msg) {
  if (msg) gen.errors[key] = msg; else delete gen.errors[key];
  const text = Object.values(gen.errors).join("\n");
  $("gen-error").hidden = !text;
  $("gen-error").textContent = text;
}
const genZoom = () => zoomFor(gen.info && gen.info.resolution, 96);
const slots = Object.fromEntries(["grid", "mix", "strip"].map((id) => [id, new RenderSlot($(id), {
  ms: $(`${id}-ms`), dl: $(`${id}-dl`), onError: (msg) => genError(id, msg), zoom: genZoom })]));

// -- limits ------------------------------------------------------------------------------------------------

const maxImages = () => server.max_images || 64;
// Pins: a mixing table of n pinned seeds holds (n + 1)^2 images.
const pinLimit = () => Math.max(2, Math.min(6, Math.floor(Math.sqrt(maxImages())) - 1));
const mixFits = (n) => (n + 1) * (n + 1) <= maxImages();
const stepsLimit = (n) => Math.min(MAX_STEPS, Math.floor((maxImages() - 1) / Math.max(1, n - 1)));

function buildCounts() {
  const max = maxImages(), before = Number($("count").value) || 8;
  const counts = COUNTS.filter((c) => c <= max);
  if (!counts.length) counts.push(max);
  $("count").replaceChildren(...counts.map((c) => el("option", { value: c }, String(c))));
  $("count").value = counts.includes(before) ? before : counts[counts.length - 1];
}

function applyStepsLimit(n) {
  const limit = stepsLimit(n), slider = $("steps");
  slider.max = limit;  // a range input clamps its value to its max
  if (Number(slider.value) > limit) slider.value = limit;
  $("steps-out").textContent = slider.value;
  $("steps-note").textContent = limit < MAX_STEPS ? `at most ${limit} with ${n} pinned seeds (the server renders ` +
    `at most ${maxImages()} images a picture)` : "";
}

function seedCount() { return Number($("count").value); }
function firstSeed() {
  const v = Math.floor(Number($("seed0").value) || 0);
  return Math.min(Math.max(0, v), MAX_SEED - seedCount() + 1);
}
function setFirstSeed(v) {
  $("seed0").max = MAX_SEED - seedCount() + 1;
  $("seed0").value = Math.min(Math.max(0, Math.floor(v)), MAX_SEED - seedCount() + 1);
  renderAll();
}
function seedList() { const first = firstSeed(); return Array.from({ length: seedCount() }, (_, k) => first + k); }
function gridCols() { return Math.min(8, seedCount()); }

// -- the network -------------------------------------------------------------------------------------------

// Run names shortened in the middle so that "@ N kimg" stays visible in the closed dropdown.
const measure = (() => {
  const ctx = document.createElement("canvas").getContext("2d");
  return (text, font) => { ctx.font = font; return ctx.measureText(text).width; };
})();
function fitLabels(select) {
  const room = select.clientWidth - 32, font = getComputedStyle(select).font;  // 32: the arrow and padding
  if (room <= 0) return;
  for (const o of select.options) {
    if (o.dataset.kimg === undefined) continue;
    const name = o.dataset.name, tail = ` @ ${o.dataset.kimg} kimg`;
    let text = name + tail;
    for (let keep = name.length - 1; keep > 2 && measure(text, font) > room; keep--) {
      text = name.slice(0, Math.ceil(keep / 2)) + "\u2026" + name.slice(name.length - Math.floor(keep / 2)) + tail;
    }
    o.textContent = text;
    o.title = name + tail;
  }
}

function fillNetworks(networks) {
  const select = $("net"), groups = new Map();
  select.replaceChildren();
  for (const n of networks) {
    const key = n.run === null ? "other files" : n.run === "." ? "this run" : n.run;
    if (!groups.has(key)) groups.set(key, el("optgroup", { label: key }));
    const data = n.kimg === null ? {} : { "data-name": n.name, "data-kimg": n.kimg };
    groups.get(key).append(el("option", { value: n.file, ...data }, n.label));
  }
  select.append(...groups.values());
  fitLabels(select);
}

// The first run's newest snapshot that loads (a run's newest may be damaged or still being written).
async function firstLoadable(networks) {
  const newest = [], seen = new Set();
  for (const n of networks) if (!seen.has(n.run ?? n.file)) { seen.add(n.run ?? n.file); newest.push(n.file); }
  for (const file of newest.slice(0, 8)) {
    try { await getJSON("/api/network?" + query({ file })); return file; } catch (e) { /* try the next run */ }
  }
  return networks[0].file;
}

// One listing at a time; a snapshot wanted meanwhile (Runs tab: "open in Generator") is opened after it.
async function loadNetworks() {
  if (gen.loading) return gen.loading.then(() => (gen.wanted ? loadNetworks() : undefined));
  gen.loading = loadNetworksOnce().finally(() => { gen.loading = null; });
  return gen.loading;
}

async function loadNetworksOnce() {
  let d;
  try { d = await getJSON("/api/networks"); } catch (e) { genError("net", String(e.message || e)); return; }
  const before = $("net").value;
  const listed = JSON.stringify(d.networks);
  if (listed === gen.listed && gen.net && !gen.wanted) return;  // nothing new: leave the open dropdown alone
  gen.listed = listed;
  fillNetworks(d.networks);
  if (!d.networks.length) { genError("net", "No network snapshots under this folder yet."); return; }
  const files = d.networks.map((n) => n.file);
  let pick = [gen.wanted, before, d.first].find((f) => f && files.includes(f));
  gen.wanted = null;
  if (!pick) pick = await firstLoadable(d.networks);
  $("net").value = pick;
  if (pick !== gen.net) await selectNetwork(pick);
}

function clearPictures() {
  for (const s of Object.values(slots)) s.clear();
  for (const id of ["grid", "mix", "strip"]) { genError(id, null); $(`${id}-fig`).hidden = true; }
}

async function selectNetwork(file) {
  gen.net = file;
  gen.info = null;
  clearPictures();  // the previous network's pictures and download links go at once
  $("net-info").textContent = "loading\u2026";
  try {
    gen.info = await getJSON("/api/network?" + query({ file }));
  } catch (e) {
    $("net-info").textContent = "";
    genError("net", `${file}: ${e.message || e}`);
    return;
  }
  if (gen.net !== file) return;  // another snapshot was picked meanwhile
  genError("net", null);
  const i = gen.info;
  const origin = i.origin === null ? "" :
    ` (started from ${i.origin}${i.total_kimg !== null ? `: ${fmt(i.total_kimg, 4)} kimg in all` : ""})`;
  $("net-info").textContent = `${i.resolution}x${i.resolution}, ${i.channels} ch, ${i.num_ws} ws` +
    `${i.c_dim ? `, ${i.c_dim} classes` : ""}${i.kimg !== null ? `, ${fmt(i.kimg, 4)} kimg${origin}` : ""}, ` +
    `${(i.params / 1e6).toFixed(2)} M params`;
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

// -- pictures ----------------------------------------------------------------------------------------------

function common() {
  return { file: gen.net, psi: Number($("psi").value).toFixed(2), noise: $("noise").value,
    class: gen.info && gen.info.c_dim ? $("class").value : null };
}

// The seeds of the mixing table as labels on its rows and columns; the top-left cell (empty: black in
// the picture) is covered.
function mixLabels(pins) {
  const cell = `${100 / (pins.length + 1)}%`;
  $("mix-cols").replaceChildren(el("span"), ...pins.map((s) => el("span", { class: "seed" }, String(s))));
  $("mix-rows").replaceChildren(el("span"), ...pins.map((s) => el("span", { class: "seed" }, String(s))));
  $("mix-corner").style.width = cell;
  $("mix-corner").style.height = cell;
}

function renderMixAndStrip(pins) {
  const n = pins.length, psi = Number($("psi").value).toFixed(2);
  applyStepsLimit(n);
  const showMix = n >= 2 && mixFits(n), showStrip = n >= 2 && (n - 1) * 2 + 1 <= maxImages();
  $("mix-fig").hidden = !showMix;
  $("strip-fig").hidden = !showStrip;
  $("pin-hint").hidden = n >= 2;
  if (!showMix) slots.mix.clear();
  if (!showStrip) slots.strip.clear();
  const lo = Math.min(Number($("mix-lo").value), Number($("mix-hi").value));
  const hi = Math.max(Number($("mix-lo").value), Number($("mix-hi").value));
  if (showMix) {
    const caption = `of seeds ${pins.join(", ")}, \u03c8 ${psi}: each row takes layers ${lo}\u2013${hi} from its column`;
    slots.mix.request("/api/render/mix?" + query({ ...common(), rows: pins.join(","), cols: pins.join(","), styles: `${lo}-${hi}` }),
      () => { $("mix-caption").textContent = caption; mixLabels(pins); });
  }
  if (showStrip) {
    const steps = $("steps").value, caption = `${pins.join(" \u2192 ")}, ${steps} steps between seeds, \u03c8 ${psi}`;
    slots.strip.request("/api/render/strip?" + query({ ...common(), seeds: pins.join(","), steps }),
      () => { $("strip-caption").textContent = caption; });
  }
}

function renderAll() {
  if (!gen.net || !gen.info) return;
  const seeds = seedList(), psi = Number($("psi").value).toFixed(2);
  const caption = `${seeds[0]}\u2013${seeds[seeds.length - 1]}, \u03c8 ${psi}`;
  $("grid-fig").hidden = false;
  slots.grid.request("/api/render/grid?" + query({ ...common(), seeds: seeds.join(","), cols: gridCols() }),
    () => { $("grid-caption").textContent = caption; });
  gen.pins = gen.pins.slice(-pinLimit());
  $("pins").replaceChildren(...gen.pins.map((s) => el("button", { class: "pin", title: "unpin", onclick: () => unpin(s) }, `${s} \u00d7`)));
  renderMixAndStrip(gen.pins);
}

function unpin(seed) { gen.pins = gen.pins.filter((s) => s !== seed); renderAll(); }

$("grid").addEventListener("click", (ev) => {
  const img = ev.currentTarget;
  if (!img.dataset.url) return;
  const shown = new URLSearchParams(img.dataset.url.split("?")[1]);  // the picture shown, not a newer request
  const seeds = shown.get("seeds").split(",").map(Number), cols = Number(shown.get("cols")) || seeds.length;
  const rows = Math.ceil(seeds.length / cols);
  const c = Math.floor((ev.offsetX / img.clientWidth) * cols), r = Math.floor((ev.offsetY / img.clientHeight) * rows);
  const seed = seeds[r * cols + c];
  if (seed === undefined || gen.pins.includes(seed)) return;
  gen.pins = gen.pins.concat([seed]).slice(-pinLimit());
  renderAll();
});
$("net").addEventListener("change", () => selectNetwork($("net").value));
$("psi").addEventListener("input", () => { $("psi-out").textContent = Number($("psi").value).toFixed(2); renderAll(); });
for (const id of ["noise", "class"]) $(id).addEventListener("change", renderAll);
$("seed0").addEventListener("change", () => setFirstSeed(Number($("seed0").value) || 0));
$("count").addEventListener("change", () => setFirstSeed(firstSeed()));
for (const id of ["mix-lo", "mix-hi", "steps"]) {
  $(id).addEventListener("input", () => { $(id + "-out").textContent = $(id).value; renderAll(); });
}
$("prev").addEventListener("click", () => setFirstSeed(firstSeed() - seedCount()));
$("next").addEventListener("click", () => setFirstSeed(firstSeed() + seedCount()));
$("random").addEventListener("click", () => setFirstSeed(Math.floor(Math.random() * (MAX_SEED - seedCount() + 2))));
$("clear-pins").addEventListener("click", () => { gen.pins = []; renderAll(); });
