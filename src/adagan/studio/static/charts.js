// adagan studio, charts.js: line charts of stats.jsonl and metric-*.jsonl as our own SVG.
// Any finite value may arrive (the server turns NaN and inf into null): spans are computed on halves
// (hi / 2 - lo / 2), so even +-1.8e308 gives finite coordinates, never an infinite axis or a NaN path.
"use strict";

const COLORS = ["#2160c4", "#d4572a", "#1b7f3b", "#8a3ffc", "#9a6700"];
const MAX = Number.MAX_VALUE;

function extent(values) {  // a loop, not Math.min(...values): a long run has more points than a call has arguments
  let lo = Infinity, hi = -Infinity;
  for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
  return [lo, hi];
}

// [lo, hi] of finite values, widened by `pad` of the span (or around a single value), still finite.
function axisRange(values, pad) {
  let [lo, hi] = extent(values);
  const half = hi / 2 - lo / 2;
  const by = half > 0 ? half * 2 * pad : Math.abs(hi) * 0.1 || 0.5;
  lo = Math.max(lo - by, -MAX);
  hi = Math.min(hi + by, MAX);
  if (!(hi / 2 - lo / 2 > 0)) { lo = -1; hi = 1; }  // a span that underflowed to 0 (denormals)
  return [lo, hi];
}

// v in [lo, hi] -> [a, b], finite for every finite v, lo and hi.
const scale = (lo, hi, a, b) => (v) => a + ((v / 2 - lo / 2) / (hi / 2 - lo / 2)) * (b - a);

function niceTicks(lo, hi, n = 4) {
  const raw = ((hi / 2 - lo / 2) / n) * 2;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  if (!(step > 0) || !Number.isFinite(step)) return out;
  // Compared in halves (hi + a bit may overflow to Infinity); at most 12 ticks whatever rounding does.
  for (let v = Math.ceil(lo / step) * step, k = 0; Number.isFinite(v) && v / 2 <= hi / 2 + step * 5e-10 && k < 12; v += step, k++) {
    out.push(Number(v.toPrecision(12)));
  }
  return out;
}

function legend(root, series, title) {
  let lx = 12 + title.length * 7.2;  // text is not measurable before it is on the page: ~7 px a bold character
  series.forEach((s, i) => {
    if (series.length < 2) return;
    root.append(svg("rect", { x: lx, y: 5, width: 8, height: 8, fill: COLORS[i % COLORS.length] }));
    const label = s.name.split("/").slice(-2).join("/");
    root.append(svg("text", { x: lx + 11, y: 13, "font-size": 10, fill: "#444" }, label));
    lx += 20 + label.length * 6;
  });
}

function hoverTip(box, root, series, sx, x0, x1, dims) {
  const { W, H, L, R, T, B } = dims;
  const tip = el("div", { class: "tip" });
  const cursor = svg("line", { y1: T, y2: H - B, stroke: "#888", visibility: "hidden" });
  root.append(cursor);
  box.append(tip);
  root.addEventListener("mousemove", (ev) => {
    const rect = root.getBoundingClientRect();
    const f = ((ev.clientX - rect.left) * (W / rect.width) - L) / (W - L - R);
    const xh = x0 / 2 + f * (x1 / 2 - x0 / 2);  // in halves, as `scale`
    const xs = series[0].xs;
    let best = xs.findIndex((v) => v !== null);
    if (best < 0) return;
    xs.forEach((v, j) => { if (v !== null && Math.abs(v / 2 - xh) < Math.abs(xs[best] / 2 - xh)) best = j; });
    cursor.setAttribute("x1", sx(xs[best])); cursor.setAttribute("x2", sx(xs[best]));
    cursor.setAttribute("visibility", "visible");
    tip.textContent = `kimg ${fmt(xs[best])}: ` + series.map((s) => `${s.name.split("/").pop()} ${fmt(s.ys[best])}`).join("  ");
  });
  root.addEventListener("mouseleave", () => { cursor.setAttribute("visibility", "hidden"); tip.textContent = ""; });
}

// A line chart of series [{name, xs, ys}] against kimg; hline: a dashed reference value (ADA's target).
function drawChart(series, { title, hline = null } = {}) {
  const dims = { W: 300, H: 170, L: 42, R: 8, T: 22, B: 20 };
  const { W, H, L, R, T, B } = dims;
  const box = el("div", { class: "chart" });
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  box.append(root);
  const ok = (v) => typeof v === "number" && Number.isFinite(v);
  const pts = series.flatMap((s) => s.xs.map((x, i) => [x, s.ys[i]])).filter(([x, y]) => ok(x) && ok(y));
  root.append(svg("text", { x: 4, y: 13, "font-size": 11, "font-weight": 600 }, title));
  legend(root, series, title);
  if (!pts.length) {
    root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", "font-size": 11, fill: "#999" }, "no data yet"));
    return box;
  }
  const [x0, x1] = axisRange(pts.map((p) => p[0]), 0);
  const [y0, y1] = axisRange(pts.map((p) => p[1]).concat(hline !== null ? [hline] : []), 0.08);
  const sx = scale(x0, x1, L, W - R), sy = scale(y0, y1, H - B, T);
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
      if (!ok(x) || !ok(y)) { flush(); return; }
      seg.push(`${sx(x).toFixed(1)},${sy(y).toFixed(1)}`);
      if (s.xs.length < 30) root.append(svg("circle", { cx: sx(x), cy: sy(y), r: 2, fill: color }));
    });
    flush();
  });
  hoverTip(box, root, series, sx, x0, x1, dims);
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
