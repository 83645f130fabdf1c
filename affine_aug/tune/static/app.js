// The tuning page. The server validates and renders; this file keeps the controls and the
// YAML text in sync and draws what comes back. Controls -> mapping -> server -> YAML text;
// YAML text -> server -> canonical mapping -> controls. At most one render request is in
// flight: changes made meanwhile are coalesced into the next one.
"use strict";

const $ = (id) => document.getElementById(id);
const KINDS = ["constant", "uniform", "normal", "loguniform", "choice"];
const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;
const SVG = "http://www.w3.org/2000/svg";
const UNITS = { rotate: "degrees", scale: "factor", shear: "degrees", translate: "", center: "relative" };
// slider extents per key (the number fields take any value; the server checks them)
const SLIDERS = {
  rotate: [-180, 180, 1], scale: [0.25, 4, 0.01], shear: [-60, 60, 0.5], center: [0, 1, 0.01],
  "translate.fraction": [-0.5, 0.5, 0.005], "translate.px": [-100, 100, 1],
};

const page = { dists: {}, probs: {}, order: [], quiet: false, marks: { boxes: [], points: [] }, size: [0, 0],
  image: "pattern", state: null, last: null, renders: 0, lastRoundTrip: null, lastServer: null };
window.__tune = page;  // read by the tests

function num(text, optional) {
  const s = String(text).trim();
  if (s === "" && optional) return undefined;
  return NUMBER.test(s) ? Number(s) : s;  // not a number: sent as typed, so the server names the key
}
function numbers(text) {
  return String(text).split(",").map((s) => s.trim()).filter((s) => s !== "").map((s) => num(s, false));
}
function fmt(v) { return v === undefined || v === null ? "" : Array.isArray(v) ? v.join(", ") : String(v); }
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
}

// ----------------------------------------------------------------------------- controls

function sliderRow(label, field, values, extent, onInput) {
  const [min, max, step] = extent;
  const range = el("input", { type: "range", min, max, step });
  const box = el("input", { class: "num", type: "text", inputmode: "decimal", "aria-label": label });
  box.value = fmt(values[field]);
  const sync = () => { const v = Number(box.value); if (NUMBER.test(box.value.trim())) range.value = Math.min(max, Math.max(min, v)); };
  sync();
  range.addEventListener("input", () => { box.value = range.value; values[field] = range.value; onInput(); });
  box.addEventListener("input", () => { values[field] = box.value; sync(); onInput(); });
  return el("div", { class: "row param-line", "data-field": field }, el("label", { text: label }), range, box);
}

function textRow(label, field, values, onInput, placeholder) {
  const box = el("input", { class: "num", type: "text", "aria-label": label, placeholder: placeholder || "" });
  box.value = fmt(values[field]);
  box.addEventListener("input", () => { values[field] = box.value; onInput(); });
  return el("div", { class: "row param-line", "data-field": field }, el("label", { text: label }), box);
}

// One scalar distribution: a kind and its parameters, kept as the text typed.
function makeDist(key, label, extentOf) {
  const values = { kind: "constant", value: "0" };
  const kind = el("select", { class: "kind", "aria-label": `${key} distribution` });
  for (const k of KINDS) kind.append(el("option", { value: k, text: k }));
  const params = el("div", { class: "params" });
  const root = el("div", { class: "row dist", "data-key": key }, el("label", { text: label }), kind, params, el("div", { class: "err" }));
  const changed = () => controlsChanged();
  function draw() {
    params.replaceChildren();
    const ext = extentOf();
    const k = values.kind;
    if (k === "constant") params.append(sliderRow("value", "value", values, ext, changed));
    if (k === "uniform" || k === "loguniform") params.append(sliderRow("low", "low", values, ext, changed), sliderRow("high", "high", values, ext, changed));
    if (k === "normal") params.append(sliderRow("mean", "mean", values, ext, changed), textRow("std", "std", values, changed),
      textRow("low", "low", values, changed, "none"), textRow("high", "high", values, changed, "none"));
    if (k === "choice") params.append(textRow("values", "values", values, changed, "a, b, c"), textRow("weights", "weights", values, changed, "equal"));
  }
  kind.addEventListener("change", () => { convert(values, kind.value); draw(); changed(); });
  const api = {
    key, root, draw,
    get() {
      const k = values.kind;
      if (k === "constant") return num(values.value, false);
      if (k === "uniform") return [num(values.low, false), num(values.high, false)];
      const out = { dist: k };
      if (k === "normal") { out.mean = num(values.mean, false); out.std = num(values.std, false); }
      if (k === "normal" || k === "loguniform") {
        const lo = num(values.low, k === "normal"), hi = num(values.high, k === "normal");
        if (lo !== undefined) out.low = lo;
        if (hi !== undefined) out.high = hi;
      }
      if (k === "choice") {
        out.values = numbers(values.values);
        if (String(values.weights || "").trim() !== "") out.weights = numbers(values.weights);
      }
      return out;
    },
    set(v) {
      for (const f of Object.keys(values)) delete values[f];
      if (Array.isArray(v)) Object.assign(values, { kind: "uniform", low: fmt(v[0]), high: fmt(v[1]) });
      else if (v !== null && typeof v === "object") {
        values.kind = v.dist;
        for (const f of ["value", "low", "high", "mean", "std", "values", "weights"]) if (v[f] !== undefined) values[f] = fmt(v[f]);
      } else Object.assign(values, { kind: "constant", value: fmt(v) });
      kind.value = values.kind;
      draw();
    },
  };
  draw();
  return api;
}

// Carry the current values over to another kind (a uniform's range becomes a normal's mean +- 2 std, ...).
function convert(values, to) {
  const n = (s) => (NUMBER.test(String(s || "").trim()) ? Number(s) : NaN);
  let lo = n(values.low), hi = n(values.high);
  if (values.kind === "constant") lo = hi = n(values.value);
  if (values.kind === "normal") { const m = n(values.mean), s = n(values.std); if (isNaN(lo)) lo = m - 2 * s; if (isNaN(hi)) hi = m + 2 * s; }
  if (values.kind === "choice") { const vs = numbers(values.values).filter((x) => typeof x === "number"); lo = Math.min(...vs); hi = Math.max(...vs); }
  const r = (x) => (isFinite(x) ? String(+x.toPrecision(6)) : "");
  const mid = (lo + hi) / 2;
  for (const f of Object.keys(values)) delete values[f];
  values.kind = to;
  if (to === "constant") values.value = r(mid);
  if (to === "uniform" || to === "loguniform") { values.low = r(lo); values.high = r(hi); }
  if (to === "normal") { values.mean = r(mid); values.std = r(hi > lo ? (hi - lo) / 4 : 1); }
  if (to === "choice") values.values = lo === hi ? r(lo) : `${r(lo)}, ${r(mid)}, ${r(hi)}`;
}

function buildControls() {
  const box = $("params");
  const unit = () => $("translate-unit") ? $("translate-unit").value : "fraction";
  const group = (key, title, ...kids) => el("div", { class: "group", "data-key": key },
    el("h3", {}, key, " ", el("small", { text: title })), ...kids, el("div", { class: "err" }));
  const d = (key, label, ext) => (page.dists[key] = makeDist(key, label, ext));
  box.append(group("rotate", "degrees, + is counter-clockwise", d("rotate", "", () => SLIDERS.rotate).root));
  const perAxis = el("input", { type: "checkbox", id: "scale-axes" });
  const iso = d("scale", "", () => SLIDERS.scale), sx = d("scale.x", "x", () => SLIDERS.scale), sy = d("scale.y", "y", () => SLIDERS.scale);
  const showAxes = () => { iso.root.hidden = perAxis.checked; sx.root.hidden = sy.root.hidden = !perAxis.checked; };
  perAxis.addEventListener("change", () => {
    if (perAxis.checked) { sx.set(iso.get()); sy.set(iso.get()); } else iso.set(sx.get());
    showAxes(); controlsChanged();
  });
  page.showScaleAxes = showAxes;
  box.append(group("scale", "> 1 enlarges", el("label", { class: "inline" }, perAxis, " per axis"), iso.root, sx.root, sy.root));
  showAxes();
  box.append(group("shear", "degrees", d("shear.x", "x", () => SLIDERS.shear).root, d("shear.y", "y", () => SLIDERS.shear).root));
  const unitSel = el("select", { id: "translate-unit", "aria-label": "translate unit" });
  for (const u of ["fraction", "px"]) unitSel.append(el("option", { value: u, text: u === "px" ? "pixels" : "fraction of the size" }));
  const tx = d("translate.x", "x", () => SLIDERS[`translate.${unit()}`]), ty = d("translate.y", "y", () => SLIDERS[`translate.${unit()}`]);
  unitSel.addEventListener("change", () => { tx.draw(); ty.draw(); controlsChanged(); });
  box.append(group("translate", "+x right, +y down", el("div", { class: "row", "data-key": "translate.unit" }, el("label", { text: "unit" }), unitSel,
    el("div", { class: "err" })), tx.root, ty.root));
  box.append(group("center", "relative to (W-1, H-1)", d("center.x", "x", () => SLIDERS.center).root, d("center.y", "y", () => SLIDERS.center).root));
  for (const row of document.querySelectorAll(".row.prob")) {
    const range = row.querySelector("input[type=range]"), text = row.querySelector("input.num");
    text.setAttribute("aria-label", row.dataset.key);
    range.addEventListener("input", () => { text.value = range.value; controlsChanged(); });
    text.addEventListener("input", () => { if (NUMBER.test(text.value.trim())) range.value = text.value; controlsChanged(); });
    page.probs[row.dataset.key] = { get: () => num(text.value, false), set: (v) => { text.value = fmt(v); range.value = v; } };
  }
  $("cfg-seed").addEventListener("input", controlsChanged);
}

function drawOrder() {
  const list = $("order");
  list.replaceChildren();
  page.order.forEach((step, i) => {
    const up = el("button", { type: "button", "aria-label": `move ${step} up`, text: "↑" });
    const down = el("button", { type: "button", "aria-label": `move ${step} down`, text: "↓" });
    up.disabled = i === 0; down.disabled = i === page.order.length - 1;
    const move = (j) => { [page.order[i], page.order[j]] = [page.order[j], page.order[i]]; drawOrder(); controlsChanged(); };
    up.addEventListener("click", () => move(i - 1));
    down.addEventListener("click", () => move(i + 1));
    list.append(el("li", {}, step, up, down));
  });
}

function readControls() {
  const g = (k) => page.dists[k].get();
  const m = { rotate: g("rotate") };
  m.scale = $("scale-axes").checked ? { x: g("scale.x"), y: g("scale.y") } : g("scale");
  m.shear = { x: g("shear.x"), y: g("shear.y") };
  m.translate = { x: g("translate.x"), y: g("translate.y"), unit: $("translate-unit").value };
  m.flip = { horizontal: page.probs["flip.horizontal"].get(), vertical: page.probs["flip.vertical"].get() };
  m.p = page.probs.p.get();
  m.order = page.order.slice();
  m.center = { x: g("center.x"), y: g("center.y") };
  const seed = num($("cfg-seed").value, true);
  if (seed !== undefined) m.seed = seed;
  return m;
}

// ``cfg`` is AffineConfig.to_dict(): every key present, axes spelled out.
function setControls(cfg) {
  const s = page.dists;
  s.rotate.set(cfg.rotate);
  const axes = cfg.scale !== null && typeof cfg.scale === "object" && !Array.isArray(cfg.scale) && !("dist" in cfg.scale);
  $("scale-axes").checked = axes;
  if (axes) { s["scale.x"].set(cfg.scale.x); s["scale.y"].set(cfg.scale.y); s.scale.set(cfg.scale.x); } else s.scale.set(cfg.scale);
  page.showScaleAxes();
  s["shear.x"].set(cfg.shear.x); s["shear.y"].set(cfg.shear.y);
  $("translate-unit").value = cfg.translate.unit;
  s["translate.x"].set(cfg.translate.x); s["translate.y"].set(cfg.translate.y);
  s["center.x"].set(cfg.center.x); s["center.y"].set(cfg.center.y);
  page.probs["flip.horizontal"].set(cfg.flip.horizontal);
  page.probs["flip.vertical"].set(cfg.flip.vertical);
  page.probs.p.set(cfg.p);
  page.order = cfg.order.slice();
  drawOrder();
  $("cfg-seed").value = cfg.seed === undefined ? "" : String(cfg.seed);
}

// ----------------------------------------------------------------------------- errors

function clearErrors() {
  for (const e of document.querySelectorAll(".has-error")) e.classList.remove("has-error");
  for (const e of document.querySelectorAll("#controls .err")) e.textContent = "";
  $("yaml-error").textContent = "";
  $("grid-error").textContent = "";
}

// Show a ConfigError at the control of the key it names (the innermost one that exists),
// and always under the YAML text.
function showConfigError(error) {
  clearErrors();
  $("yaml").classList.add("has-error");
  $("yaml-error").textContent = error.message;
  if (!error.key) return;
  const parts = error.key.replace(/\[\d+\]/g, "").split(".");
  for (let n = parts.length; n > 0; n--) {
    const found = document.querySelectorAll(`#controls [data-key="${parts.slice(0, n).join(".")}"]`);
    const target = [...found].reverse().find((e) => !e.hidden);
    if (target) {
      target.classList.add("has-error");
      target.querySelector(":scope > .err").textContent = error.message.replace(/^<page>(:\d+)?: /, "");
      return;
    }
  }
}

function banner(text) { $("banner").textContent = text || ""; $("banner").hidden = !text; }

// ----------------------------------------------------------------------------- rendering

function gridSettings() {
  const int = (id) => { const s = $(id).value.trim(); return /^\d+$/.test(s) ? Number(s) : s; };
  return { image: page.image, seed: int("seed"), key_start: int("key-start"), n: int("count"), size: Number($("size").value),
    border: $("border").value, interpolation: $("interpolation").value, antialias: $("antialias").checked, fill: int("fill"),
    boxes: page.marks.boxes, points: page.marks.points, path: $("save-path").value };
}

let inflight = false, pending = null, textTimer = null;
function schedule(payload) { pending = payload; if (!inflight) pump(); }
function controlsChanged() { if (!page.quiet) schedule({ config: readControls(), from: "controls" }); }
function textChanged() { clearTimeout(textTimer); textTimer = setTimeout(() => schedule({ yaml: $("yaml").value, from: "text" }), 120); }
function settingsChanged() { schedule({ yaml: $("yaml").value, from: "settings" }); }

async function pump() {
  if (!pending) return;
  const job = pending; pending = null; inflight = true;
  const body = Object.assign(gridSettings(), job.config !== undefined ? { config: job.config } : { yaml: job.yaml });
  const t0 = performance.now();
  try {
    const r = await fetch("/api/render", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const data = await r.json();
    if (r.ok && data.ok) { await showGrid(data); page.lastRoundTrip = performance.now() - t0; page.lastServer = data.ms; page.renders++; }
    applyResponse(r, data, job, t0);
  } catch (e) {
    banner(`the server did not answer (${e}); is affine-aug tune still running?`);
  } finally {
    inflight = false;
    pump();
  }
}

function applyResponse(r, data, job, t0) {
  if (r.ok && data.ok) {
    banner("");
    clearErrors();
    $("yaml").classList.remove("has-error");
    $("grid").classList.remove("stale");
    if (job.from === "controls" && data.yaml) $("yaml").value = data.yaml;
    if (job.from !== "controls") { page.quiet = true; setControls(data.config); page.quiet = false; }
    page.last = data;
    drawHists(data);
    $("snippet-py").textContent = data.snippet.python;
    $("snippet-cli").textContent = data.snippet.cli;
    const ms = data.ms;
    $("status").textContent = `grid in ${Math.round(page.lastRoundTrip)} ms (server ${ms.total.toFixed(0)}: warp ${ms.warp.toFixed(1)}, ` +
      `encode ${ms.encode.toFixed(1)}, stats ${ms.stats.toFixed(1)})`;
  } else if (r.status === 200) {  // a config error: shown at its key; the grid keeps the last good one, dimmed
    if (job.from === "controls" && data.yaml) $("yaml").value = data.yaml;
    showConfigError(data.error);
    $("grid").classList.add("stale");
    $("status").textContent = "config error";
  } else {
    clearErrors();
    $("grid-error").textContent = data.error ? data.error.message : `error ${r.status}`;
    $("grid").classList.add("stale");
    $("status").textContent = `error ${r.status}`;
  }
}

function marksSvg(svg, w, h, marks, showQuads) {
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.replaceChildren();
  const add = (tag, attrs) => { const e = document.createElementNS(SVG, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); svg.append(e); };
  if (showQuads && marks.quads) {
    for (let i = 0; i + 3 < marks.quads.length; i += 4) {
      add("polygon", { class: "quad", points: marks.quads.slice(i, i + 4).map((p) => p.join(",")).join(" ") });
    }
  }
  for (const [x1, y1, x2, y2] of marks.boxes) add("rect", { class: "box", x: x1, y: y1, width: Math.max(0, x2 - x1), height: Math.max(0, y2 - y1) });
  const r = Math.max(2, Math.max(w, h) / 60);
  for (const [x, y] of marks.points) add("circle", { class: "point", cx: x + 0.5, cy: y + 0.5, r });  // centre -> edge coordinates
}

async function showGrid(data) {
  const grid = $("grid");
  while (grid.children.length > data.tiles.length) grid.lastChild.remove();
  while (grid.children.length < data.tiles.length) {
    grid.append(el("figure", { class: "tile" }, el("img", { alt: "sample" }), document.createElementNS(SVG, "svg"), el("figcaption")));
  }
  const loads = [];
  data.tiles.forEach((src, i) => {
    const fig = grid.children[i];
    const img = fig.querySelector("img");
    img.src = src;
    loads.push(img.decode().catch(() => null));
    const p = data.params;
    fig.querySelector("figcaption").textContent = `key ${data.keys[i]}`;
    fig.title = `key ${data.keys[i]}: rotate ${p.rotate[i].toFixed(1)}°, scale ${p.scale_x[i].toFixed(3)}` +
      (p.scale_y[i] !== p.scale_x[i] ? `×${p.scale_y[i].toFixed(3)}` : "") +
      `, shear ${p.shear_x[i].toFixed(1)}°/${p.shear_y[i].toFixed(1)}°, translate ${p.translate_x[i].toFixed(1)}, ${p.translate_y[i].toFixed(1)} px` +
      (p.flip_x[i] ? ", flipped ↔" : "") + (p.flip_y[i] ? ", flipped ↕" : "") + (p.applied[i] ? "" : " (not applied)");
    marksSvg(fig.querySelector("svg"), data.width, data.height, data.marks[i], true);
  });
  await Promise.all(loads);
}

const PARAM_UNITS = { rotate: "°", shear_x: "°", shear_y: "°", translate_x: "px", translate_y: "px", center_x: "px", center_y: "px" };
function drawHists(data) {
  const box = $("hists");
  box.replaceChildren();
  const constants = [];
  for (const name of page.state.params) {
    const h = data.hist[name];
    if (h.fraction !== undefined) { constants.push(`${name}: ${(100 * h.fraction).toFixed(1)}% true`); continue; }
    if (h.constant !== undefined) { constants.push(`${name} = ${+h.constant.toPrecision(5)}${PARAM_UNITS[name] || ""}`); continue; }
    const canvas = el("canvas", { width: 240, height: 70 });
    const lo = h.edges[0], hi = h.edges[h.edges.length - 1];
    box.append(el("div", { class: "hist", "data-param": name },
      el("div", { class: "name" }, el("span", { text: `${name} ${PARAM_UNITS[name] || ""}` }), el("span", { text: `${+lo.toPrecision(4)} … ${+hi.toPrecision(4)}` })), canvas));
    const ctx = canvas.getContext("2d");
    const peak = Math.max(...h.counts), bw = canvas.width / h.counts.length;
    ctx.fillStyle = "#7d9fd8";
    h.counts.forEach((c, i) => { const bh = (c / peak) * (canvas.height - 8); ctx.fillRect(i * bw + 0.5, canvas.height - bh, bw - 1, bh); });
    ctx.fillStyle = "#d0204a";
    for (const v of data.params[name]) ctx.fillRect(((v - lo) / (hi - lo || 1)) * (canvas.width - 2), 0, 2, 7);  // the grid's draws
  }
  $("hist-note").textContent = `${4096} keyed draws from the first key; over the transformed ones (p); red ticks: the grid's samples. ` + constants.join(" · ");
}

// ----------------------------------------------------------------------------- input image and marks

function loadInput() {
  const img = $("input-img");
  img.onload = () => {
    const scale = page.size[0] ? [img.naturalWidth / page.size[1], img.naturalHeight / page.size[0]] : null;
    if (scale && page.keepMarks) scaleMarks(scale[0], scale[1]); else if (!page.keepMarks) page.marks = { boxes: [], points: [] };
    page.size = [img.naturalHeight, img.naturalWidth];
    drawInputMarks();
    settingsChanged();
  };
  img.onerror = async () => {
    const r = await fetch(img.src).catch(() => null);
    const data = r ? await r.json().catch(() => null) : null;
    banner(data && data.error ? data.error.message : "cannot load that image");
  };
  img.src = `/api/image?name=${encodeURIComponent(page.image)}&size=${$("size").value}`;
}

function scaleMarks(sx, sy) {
  page.marks.boxes = page.marks.boxes.map(([a, b, c, d]) => [a * sx, b * sy, c * sx, d * sy]);
  page.marks.points = page.marks.points.map(([x, y]) => [(x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5]);
}

function drawInputMarks(extra) {
  const [h, w] = page.size;
  const marks = { boxes: page.marks.boxes.concat(extra ? [extra] : []), points: page.marks.points };
  marksSvg($("input-svg"), w, h, marks, false);
  $("marks-info").textContent = `${page.marks.boxes.length} boxes, ${page.marks.points.length} keypoints (working image ${w}×${h} px)`;
}

function setupDrawing() {
  const svg = $("input-svg");
  let start = null;
  const at = (e) => { const r = svg.getBoundingClientRect(); return [(e.clientX - r.left) / r.width * page.size[1], (e.clientY - r.top) / r.height * page.size[0], e.clientX, e.clientY]; };
  const boxOf = (a, b) => [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])];
  svg.addEventListener("pointerdown", (e) => { start = at(e); svg.setPointerCapture(e.pointerId); });
  svg.addEventListener("pointermove", (e) => { if (start) drawInputMarks(boxOf(start, at(e))); });
  svg.addEventListener("pointerup", (e) => {
    if (!start) return;
    const end = at(e);
    if (Math.hypot(end[2] - start[2], end[3] - start[3]) < 4) page.marks.points.push([end[0] - 0.5, end[1] - 0.5]);  // edge -> centre
    else page.marks.boxes.push(boxOf(start, end));
    start = null;
    drawInputMarks();
    settingsChanged();
  });
  $("clear-marks").addEventListener("click", () => { page.marks = { boxes: [], points: [] }; drawInputMarks(); settingsChanged(); });
  $("export-marks").addEventListener("click", () => download("marks.json", JSON.stringify({ size: page.size, ...page.marks }, null, 1), "application/json"));
  $("marks-file").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    e.target.value = "";
    if (!file) return;
    try { loadMarks(JSON.parse(await file.text())); } catch (err) { $("marks-info").textContent = `${file.name}: ${err.message}`; }
  });
}

// {"boxes": [[x1, y1, x2, y2], ...], "points": [[x, y], ...], "size": [H, W]}: boxes on pixel edges,
// points on pixel centres, in the pixels of an image of ``size`` (default: the working image).
function loadMarks(d) {
  const ok = (list, n) => list === undefined || (Array.isArray(list) && list.every((b) => Array.isArray(b) && b.length === n && b.every(Number.isFinite)));
  if (d === null || typeof d !== "object" || !ok(d.boxes, 4) || !ok(d.points, 2)) throw new Error('expected {"boxes": [[x1, y1, x2, y2], ...], "points": [[x, y], ...], "size": [H, W]}');
  page.marks = { boxes: d.boxes || [], points: d.points || [] };
  if (Array.isArray(d.size) && d.size.length === 2 && d.size[0] > 0 && d.size[1] > 0) scaleMarks(page.size[1] / d.size[1], page.size[0] / d.size[0]);
  drawInputMarks();
  settingsChanged();
}

// ----------------------------------------------------------------------------- save, download, upload

function download(name, text, type) {
  const a = el("a", { href: URL.createObjectURL(new Blob([text], { type })), download: name });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

async function save() {
  const body = Object.assign(gridSettings(), { path: $("save-path").value, yaml: $("yaml").value, overwrite: $("overwrite").checked });
  const r = await fetch("/api/save", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const data = await r.json();
  if (data.ok) {
    $("save-info").textContent = `saved ${data.path}`;
    $("snippet-py").textContent = data.snippet.python;
    $("snippet-cli").textContent = data.snippet.cli;
  } else if (data.error && "line" in data.error) {  // a ConfigError (they carry key and line)
    showConfigError(data.error);
    $("save-info").textContent = "not saved: fix the config first";
  } else {
    $("save-info").textContent = `not saved: ${data.error.message}`;
  }
}

async function upload(file) {
  const r = await fetch("/api/upload", { method: "POST", body: file,
    headers: { "Content-Type": file.type || "application/octet-stream", "X-Filename": encodeURIComponent(file.name) } });
  const data = await r.json().catch(() => ({ error: { message: `error ${r.status}` } }));
  if (!data.ok) { banner(`upload refused: ${data.error.message}`); return; }
  banner("");
  fillImages(data.images);
  selectImage(data.name);
}

function fillImages(images) {
  const sel = $("image");
  sel.replaceChildren();
  for (const im of images) sel.append(el("option", { value: im.name, text: im.label }));
  sel.value = page.image;
}
function selectImage(name) { page.image = name; $("image").value = name; page.keepMarks = false; page.size = [0, 0]; loadInput(); }

// ----------------------------------------------------------------------------- start

async function start() {
  const r = await fetch("/api/state");
  const st = await r.json();
  page.state = st;
  buildControls();
  const opts = (id, list, value) => { for (const v of list) $(id).append(el("option", { value: v, text: v })); $(id).value = value; };
  opts("border", st.borders, "constant");
  opts("interpolation", st.interpolations, "bilinear");
  opts("size", st.sizes, "224");
  opts("preset", st.presets, "");
  fillImages(st.images);
  page.quiet = true; setControls(st.config); page.quiet = false;
  $("yaml").value = st.yaml;
  $("save").disabled = st.save_dir === null;
  $("save-info").textContent = st.save_dir === null ? "saving on the server is off (start with --save-dir DIR); download works"
    : `saves go under ${st.save_dir}`;
  $("yaml").addEventListener("input", textChanged);
  for (const id of ["border", "interpolation", "antialias", "seed", "key-start", "count", "fill"]) $(id).addEventListener("input", settingsChanged);
  $("size").addEventListener("change", () => { page.keepMarks = true; loadInput(); });
  $("image").addEventListener("change", () => selectImage($("image").value));
  $("upload").addEventListener("change", (e) => { const f = e.target.files[0]; e.target.value = ""; if (f) upload(f); });
  $("preset").addEventListener("change", async () => {
    const name = $("preset").value;
    if (!name) return;
    const p = await (await fetch(`/api/preset?name=${encodeURIComponent(name)}`)).json();
    if (p.ok) { $("yaml").value = p.yaml; schedule({ yaml: p.yaml, from: "text" }); }
  });
  $("save").addEventListener("click", save);
  $("download").addEventListener("click", () => download(($("save-path").value.split("/").pop() || "my_aug.yaml"), $("yaml").value, "application/x-yaml"));
  setupDrawing();
  loadInput();
}

start().catch((e) => banner(`cannot start the page: ${e}`));
