// The embedding map: every embedded image as a point on a canvas, coloured by label or by
// prediction. Built for 100,000 points: one canvas path per colour, a uniform grid over the
// data for hover hit-testing, and hover highlights on a separate overlay canvas so moving
// the mouse never redraws the points.

import { apiClient } from "./api.js";

const app = document.getElementById("map-app");
const projectId = app.dataset.projectId;
const csrfToken = app.dataset.csrf;
const api = apiClient(csrfToken);
const detailBase = app.dataset.detailBase;
const thumbnailBase = app.dataset.thumbnailBase;

const $ = (id) => document.getElementById(id);
const canvas = $("map-canvas");
const overlay = $("map-overlay");
const stage = $("map-stage");
const tooltip = $("map-tooltip");

const NONE_COLOUR = "#9aa0ab"; // unlabelled / no prediction
const HIT_RADIUS_PX = 6;
const GRID_SIZE = 256;

const state = {
  n: 0,
  ids: null, // Float64Array: image id per point (exact for any integer id)
  wx: null, // Float32Array world x in [0, 1]
  wy: null, // Float32Array world y in [0, 1], y up in the data, down on screen
  label: null,
  predicted: null,
  classes: new Map(), // class id -> {name, colour}
  colourBy: "label",
  scale: 1, // screen px per world unit
  offsetX: 0,
  offsetY: 0,
  width: 0, // css px
  height: 0,
  dpr: 1,
  grid: null, // {start: Int32Array(cells + 1), items: Int32Array(n)}
  hovered: -1,
  drawPending: false,
  shown: null, // the payload on screen: its method and t-SNE state
};


function showError(message) {
  const box = $("map-error");
  box.textContent = message;
  box.hidden = !message;
}

// --- data -------------------------------------------------------------------------------

function load(data) {
  const points = data.points;
  const n = points.image_id.length;
  state.n = n;
  state.ids = Float64Array.from(points.image_id);
  state.label = Int32Array.from(points.label);
  state.predicted = Int32Array.from(points.predicted);
  state.classes = new Map(data.classes.map((c) => [c.id, c]));
  // Normalise to a unit square keeping the aspect ratio, so zoom and the grid are simple.
  let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = points.x[i], y = points.y[i];
    if (x < minX) minX = x;
    if (x > maxX) maxX = x;
    if (y < minY) minY = y;
    if (y > maxY) maxY = y;
  }
  const span = Math.max(maxX - minX, maxY - minY) || 1;
  const padX = (span - (maxX - minX)) / 2, padY = (span - (maxY - minY)) / 2;
  state.wx = new Float32Array(n);
  state.wy = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    state.wx[i] = (points.x[i] - minX + padX) / span;
    state.wy[i] = (maxY - points.y[i] + padY) / span;
  }
  buildGrid();
}

function cellOf(w) {
  return Math.min(GRID_SIZE - 1, Math.max(0, Math.floor(w * GRID_SIZE)));
}

function buildGrid() {
  // Counting sort of the points into GRID_SIZE² cells: start[c]..start[c+1] index items.
  const cells = GRID_SIZE * GRID_SIZE;
  const start = new Int32Array(cells + 1);
  const cellIndex = new Int32Array(state.n);
  for (let i = 0; i < state.n; i++) {
    const c = cellOf(state.wy[i]) * GRID_SIZE + cellOf(state.wx[i]);
    cellIndex[i] = c;
    start[c + 1]++;
  }
  for (let c = 0; c < cells; c++) start[c + 1] += start[c];
  const fill = start.slice(0, cells);
  const items = new Int32Array(state.n);
  for (let i = 0; i < state.n; i++) items[fill[cellIndex[i]]++] = i;
  state.grid = { start, items };
}

function nearest(sx, sy) {
  // The point nearest to screen position (sx, sy) within HIT_RADIUS_PX, or -1.
  const wx = (sx - state.offsetX) / state.scale;
  const wy = (sy - state.offsetY) / state.scale;
  const r = HIT_RADIUS_PX / state.scale;
  const x0 = cellOf(wx - r), x1 = cellOf(wx + r), y0 = cellOf(wy - r), y1 = cellOf(wy + r);
  if (wx + r < 0 || wy + r < 0 || wx - r > 1 || wy - r > 1) return -1;
  const { start, items } = state.grid;
  let best = -1, bestD = r * r;
  for (let cy = y0; cy <= y1; cy++) {
    for (let cx = x0; cx <= x1; cx++) {
      const c = cy * GRID_SIZE + cx;
      for (let k = start[c]; k < start[c + 1]; k++) {
        const i = items[k];
        const dx = state.wx[i] - wx, dy = state.wy[i] - wy;
        const d = dx * dx + dy * dy;
        if (d <= bestD) { bestD = d; best = i; }
      }
    }
  }
  return best;
}

// --- drawing ----------------------------------------------------------------------------

function colourOf(classId) {
  const c = state.classes.get(classId);
  return c ? c.colour : NONE_COLOUR;
}

function className(classId) {
  const c = state.classes.get(classId);
  return c ? c.name : null;
}

function currentColumn() {
  return state.colourBy === "label" ? state.label : state.predicted;
}

function resize() {
  const rect = stage.getBoundingClientRect();
  const firstFit = state.width === 0;
  const oldW = state.width, oldH = state.height;
  state.width = Math.max(1, Math.floor(rect.width));
  state.height = Math.max(1, Math.floor(rect.height));
  state.dpr = window.devicePixelRatio || 1;
  for (const c of [canvas, overlay]) {
    c.width = Math.round(state.width * state.dpr);
    c.height = Math.round(state.height * state.dpr);
    c.style.width = `${state.width}px`;
    c.style.height = `${state.height}px`;
  }
  if (firstFit) {
    fit();
  } else {
    // Keep the same world point in the centre when the window changes size.
    state.offsetX += (state.width - oldW) / 2;
    state.offsetY += (state.height - oldH) / 2;
  }
  scheduleDraw();
}

function fit() {
  const margin = 28;
  state.scale = Math.max(1, Math.min(state.width, state.height) - 2 * margin);
  state.offsetX = (state.width - state.scale) / 2;
  state.offsetY = (state.height - state.scale) / 2;
}

function scheduleDraw() {
  if (state.drawPending) return;
  state.drawPending = true;
  requestAnimationFrame(() => {
    state.drawPending = false;
    draw();
    drawOverlay();
  });
}

function draw() {
  const t0 = performance.now();
  const ctx = canvas.getContext("2d");
  ctx.setTransform(state.dpr, 0, 0, state.dpr, 0, 0);
  ctx.clearRect(0, 0, state.width, state.height);
  if (!state.n) return;
  const column = currentColumn();
  // Group point indices by colour; unlabelled first so classes are drawn on top.
  const groups = new Map([[-1, []]]);
  for (const id of state.classes.keys()) groups.set(id, []);
  for (let i = 0; i < state.n; i++) {
    const key = state.classes.has(column[i]) ? column[i] : -1;
    groups.get(key).push(i);
  }
  // Big points while there are few; small squares (much cheaper than arcs) for many.
  const zoomBoost = Math.min(3, Math.max(1, Math.log2(state.scale / 600) + 1));
  const many = state.n > 20000;
  const size = (many ? 2 : 3.5) * zoomBoost;
  const { scale, offsetX, offsetY, width, height } = state;
  ctx.globalAlpha = many ? 0.7 : 0.85;
  for (const [key, members] of groups) {
    if (!members.length) continue;
    ctx.fillStyle = key === -1 ? NONE_COLOUR : colourOf(key);
    ctx.beginPath();
    for (const i of members) {
      const x = offsetX + state.wx[i] * scale, y = offsetY + state.wy[i] * scale;
      if (x < -size || y < -size || x > width + size || y > height + size) continue;
      if (many) {
        ctx.rect(x - size / 2, y - size / 2, size, size);
      } else {
        ctx.moveTo(x + size, y);
        ctx.arc(x, y, size, 0, 2 * Math.PI);
      }
    }
    ctx.fill();
  }
  ctx.globalAlpha = 1;
  canvas.dataset.drawn = String(state.n);
  canvas.dataset.colourBy = state.colourBy;
  canvas.dataset.drawMs = (performance.now() - t0).toFixed(1);
}

function drawOverlay() {
  const ctx = overlay.getContext("2d");
  ctx.setTransform(state.dpr, 0, 0, state.dpr, 0, 0);
  ctx.clearRect(0, 0, state.width, state.height);
  const i = state.hovered;
  if (i < 0) return;
  const x = state.offsetX + state.wx[i] * state.scale;
  const y = state.offsetY + state.wy[i] * state.scale;
  ctx.beginPath();
  ctx.arc(x, y, 7, 0, 2 * Math.PI);
  ctx.lineWidth = 2.5;
  ctx.strokeStyle = "#fff";
  ctx.stroke();
  ctx.lineWidth = 1.5;
  ctx.strokeStyle = "#16181d";
  ctx.stroke();
}

// --- legend and summary -------------------------------------------------------------------

function renderLegend() {
  const column = currentColumn();
  const counts = new Map();
  for (let i = 0; i < state.n; i++) {
    const key = state.classes.has(column[i]) ? column[i] : -1;
    counts.set(key, (counts.get(key) || 0) + 1);
  }
  const legend = $("map-legend");
  legend.replaceChildren();
  const entries = [...state.classes.values()]
    .filter((c) => !c.archived || counts.get(c.id))
    .map((c) => [c.name, c.colour, counts.get(c.id) || 0]);
  const none = state.colourBy === "label" ? "Unlabelled" : "No prediction yet";
  entries.push([none, NONE_COLOUR, counts.get(-1) || 0]);
  for (const [name, colour, count] of entries) {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "map-swatch";
    swatch.style.background = colour;
    const label = document.createElement("span");
    label.className = "map-legend-name";
    label.textContent = name;
    const number = document.createElement("span");
    number.className = "map-legend-count";
    number.textContent = count.toLocaleString();
    item.append(swatch, label, number);
    legend.append(item);
  }
  $("legend-title").textContent = state.colourBy === "label" ? "Labels" : "Predictions";
}

function renderSummary(data) {
  const method = METHOD_NAMES[data.method] || data.method.toUpperCase();
  let text = `${state.n.toLocaleString()} images · ${method}`;
  if (data.explained_variance.length === 2) {
    const [a, b] = data.explained_variance.map((v) => (100 * v).toFixed(1));
    text += ` · the two axes explain ${a}% and ${b}% of the variance`;
  }
  $("map-summary").textContent = text;
  $("map-projection").textContent = projectionNote(data);
  const axis = data.method === "pca" ? "PC" : method;
  $("axis-x").textContent = `${axis} 1 →`;
  $("axis-y").textContent = `↑ ${axis} 2`;
}

const METHOD_NAMES = { pca: "PCA", tsne: "t-SNE" };

function projectionNote(data) {
  // Which projection the map shows, and what becomes of the t-SNE layout.
  if (data.method === "tsne") {
    return "Projection: t-SNE. Images the model finds alike lie close together; " +
      "distances between far-apart groups mean little.";
  }
  switch (data.tsne) {
    case "computing":
      return "Projection: PCA, while the t-SNE layout is being computed. " +
        "The map switches to it by itself when it is ready.";
    case "failed":
      return `Projection: PCA. The t-SNE layout could not be computed: ${data.tsne_message} ` +
        "It is tried again when new images are embedded.";
    case "unavailable":
      return "Projection: PCA. Too few images (or all alike) for a t-SNE layout.";
    default:
      return "Projection: PCA.";
  }
}

// --- interaction ------------------------------------------------------------------------

function localPoint(event) {
  const rect = canvas.getBoundingClientRect();
  return [event.clientX - rect.left, event.clientY - rect.top];
}

// Thumbnails smaller than the preview box (28-pixel Fashion-MNIST) stay crisp, not blurred.
$("tooltip-img").addEventListener("load", (event) => {
  const img = event.target;
  img.classList.toggle("pixelated", Math.max(img.naturalWidth, img.naturalHeight) < 124);
});

function showTooltip(i, sx, sy) {
  const id = state.ids[i];
  const img = $("tooltip-img");
  const src = `${thumbnailBase}${id}/thumbnail`;
  if (img.getAttribute("src") !== src) img.src = src;
  $("tooltip-id").textContent = `#${id}`;
  $("tooltip-label").textContent = className(state.label[i]) || "none yet";
  $("tooltip-predicted").textContent = className(state.predicted[i]) || "none yet";
  tooltip.hidden = false;
  // Place beside the cursor, flipped where it would leave the stage.
  const w = tooltip.offsetWidth, h = tooltip.offsetHeight, gap = 14;
  const left = sx + gap + w > state.width ? sx - gap - w : sx + gap;
  const top = Math.min(Math.max(4, sy - h / 2), state.height - h - 4);
  tooltip.style.transform = `translate(${Math.round(left)}px, ${Math.round(top)}px)`;
}

function setHovered(i, sx, sy) {
  if (i !== state.hovered) {
    state.hovered = i;
    drawOverlay();
    canvas.style.cursor = i >= 0 ? "pointer" : "grab";
  }
  if (i >= 0) showTooltip(i, sx, sy);
  else tooltip.hidden = true;
}

function zoomAt(sx, sy, factor) {
  const next = Math.min(Math.max(state.scale * factor, 50), 200000);
  const f = next / state.scale;
  state.offsetX = sx - (sx - state.offsetX) * f;
  state.offsetY = sy - (sy - state.offsetY) * f;
  state.scale = next;
  setHovered(-1);
  scheduleDraw();
}

function pan(dx, dy) {
  state.offsetX += dx;
  state.offsetY += dy;
  scheduleDraw();
}

let drag = null;

function bindEvents() {
  canvas.addEventListener("wheel", (event) => {
    event.preventDefault();
    const [sx, sy] = localPoint(event);
    zoomAt(sx, sy, Math.exp(-event.deltaY * 0.0015));
  }, { passive: false });
  canvas.addEventListener("pointerdown", (event) => {
    const [sx, sy] = localPoint(event);
    drag = { sx, sy, ox: state.offsetX, oy: state.offsetY, moved: false };
    canvas.setPointerCapture(event.pointerId);
  });
  canvas.addEventListener("pointermove", (event) => {
    const [sx, sy] = localPoint(event);
    if (drag) {
      const dx = sx - drag.sx, dy = sy - drag.sy;
      if (Math.abs(dx) + Math.abs(dy) > 4) drag.moved = true;
      if (drag.moved) {
        state.offsetX = drag.ox + dx;
        state.offsetY = drag.oy + dy;
        canvas.style.cursor = "grabbing";
        setHovered(-1);
        scheduleDraw();
        return;
      }
    }
    setHovered(nearest(sx, sy), sx, sy);
  });
  canvas.addEventListener("pointerup", (event) => {
    const wasClick = drag && !drag.moved;
    drag = null;
    canvas.style.cursor = state.hovered >= 0 ? "pointer" : "grab";
    if (!wasClick) return;
    const [sx, sy] = localPoint(event);
    const i = nearest(sx, sy);
    if (i >= 0) window.location.assign(`${detailBase}${state.ids[i]}`);
  });
  canvas.addEventListener("pointerleave", () => {
    if (!drag) setHovered(-1);
  });
  canvas.addEventListener("keydown", (event) => {
    const step = 60;
    const actions = {
      "+": () => zoomAt(state.width / 2, state.height / 2, 1.25),
      "=": () => zoomAt(state.width / 2, state.height / 2, 1.25),
      "-": () => zoomAt(state.width / 2, state.height / 2, 0.8),
      "0": () => { fit(); scheduleDraw(); },
      ArrowLeft: () => pan(step, 0),
      ArrowRight: () => pan(-step, 0),
      ArrowUp: () => pan(0, step),
      ArrowDown: () => pan(0, -step),
    };
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  });
  $("reset-view").addEventListener("click", () => { fit(); scheduleDraw(); });
  $("colour-by").addEventListener("change", (event) => {
    state.colourBy = event.target.value;
    renderLegend();
    setHovered(-1);
    scheduleDraw();
  });
  new ResizeObserver(() => resize()).observe(stage);
}

// --- start ------------------------------------------------------------------------------

const POLL_MS = 3000; // while the t-SNE layout is computed

async function fetchMap() {
  return api("GET", `/projects/${projectId}/map`);
}

function show(data) {
  load(data);
  state.shown = data;
  renderSummary(data);
  $("map-note").textContent = data.message;
  renderLegend();
  fit();
  setHovered(-1);
  scheduleDraw();
  canvas.dataset.method = data.method;
}

async function pollLayout() {
  // Ask again until the t-SNE layout is ready (or failed), then redraw with it.
  let data;
  try {
    data = await fetchMap();
  } catch (error) {
    setTimeout(pollLayout, POLL_MS * 3); // the server may be restarting; keep PCA shown
    return;
  }
  if (data.empty) return;
  if (data.method !== state.shown.method || data.tsne !== state.shown.tsne) show(data);
  if (data.tsne === "computing") setTimeout(pollLayout, POLL_MS);
}

async function start() {
  let data;
  try {
    data = await fetchMap();
  } catch (error) {
    $("map-loading").hidden = true;
    $("map-summary").textContent = "The map could not be loaded.";
    showError(`The map could not be loaded: ${error.message}`);
    return;
  }
  $("map-loading").hidden = true;
  if (data.empty) {
    $("map-summary").textContent = `${data.images.toLocaleString()} images, none embedded yet.`;
    $("map-empty-text").textContent = data.message;
    $("map-empty").hidden = false;
    canvas.hidden = true;
    return;
  }
  $("colour-by").disabled = false;
  $("reset-view").disabled = false;
  canvas.style.cursor = "grab";
  bindEvents();
  resize();
  show(data);
  if (data.tsne === "computing") setTimeout(pollLayout, POLL_MS);
}

start();
