// The lead's dashboard: draws its charts as plain SVG/HTML from one JSON endpoint and keeps
// them current while jobs run. All data goes into the page through textContent/attributes.

import { apiClient } from "./api.js";

const root = document.getElementById("dashboard");
const projectId = root.dataset.projectId;
const csrfToken = root.dataset.csrf;
const api = apiClient(csrfToken);
const SVG = "http://www.w3.org/2000/svg";
const FAST_POLL_MS = 2000; // while a job is queued or running
const SLOW_POLL_MS = 30000; // otherwise: labels arrive from annotators meanwhile

const $ = (id) => document.getElementById(id);
let latest = null; // the last dashboard payload
let pollTimer = null;


function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

// --- small DOM helpers ------------------------------------------------------------------------

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function empty(message, hint) {
  const box = el("div", { class: "empty-state" });
  box.append(el("p", { class: "empty-title" }, message));
  if (hint) box.append(el("p", { class: "empty-hint" }, hint));
  return box;
}

const pct = (x) => (typeof x === "number" ? `${(x * 100).toFixed(1)} %` : "–");
const num = (x) => new Intl.NumberFormat("en").format(x);

function table(headers, rows, className = "table dash-table") {
  const t = el("table", { class: className });
  const head = el("tr");
  for (const h of headers) {
    head.append(el("th", { scope: "col", class: h.num ? "num" : "" }, h.label));
  }
  const thead = el("thead");
  thead.append(head);
  t.append(thead);
  const body = el("tbody");
  for (const cells of rows) {
    const tr = el("tr");
    cells.forEach((cell, i) => {
      const td = el("td", { class: headers[i].num ? "num" : "" });
      if (cell instanceof Node) td.append(cell);
      else td.textContent = cell;
      tr.append(td);
    });
    body.append(tr);
  }
  t.append(body);
  return t;
}

// --- KPIs ---------------------------------------------------------------------------------------

function renderKpis(data) {
  const t = data.totals;
  $("kpi-images").textContent = num(t.images);
  $("kpi-labelled").textContent = num(t.labelled);
  $("kpi-labelled-share").textContent = t.images
    ? `labelled (${((t.labelled / t.images) * 100).toFixed(1)} %)`
    : "labelled";
  $("kpi-embedded").textContent = num(t.embedded);
  const r = data.latest_round;
  $("kpi-accuracy").textContent = r ? pct(r.accuracy) : "–";
  $("kpi-accuracy-label").textContent = r
    ? `accuracy, round ${r.number} (cross-validated)`
    : "accuracy: no trained round yet";
  $("kpi-next").textContent = num(data.labels_until_next_round);
}

// --- images per class: horizontal grouped bars -------------------------------------------------

function renderClasses(data) {
  const box = $("class-chart");
  if (!data.classes.length) {
    box.replaceChildren(empty("This project has no classes yet.",
      "Add classes on the project page, then label a few images of each."));
    return;
  }
  const labelW = 120;
  const valueW = 56;
  const width = 520;
  // Few classes get thicker bars so the chart fills its panel; many classes stay compact.
  const rowH = Math.min(52, Math.max(30, 220 / data.classes.length));
  const barH = Math.round((rowH - 10) / 2);
  const height = data.classes.length * rowH + 8;
  const max = Math.max(1, ...data.classes.map((c) => Math.max(c.labelled, c.predicted)));
  const scale = (width - labelW - valueW) / max;
  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${height}`, class: "bars", role: "img",
    "aria-label": data.classes.map((c) =>
      `${c.name}: ${c.labelled} labelled, ${c.predicted} auto-tagged`).join("; "),
  });
  data.classes.forEach((c, i) => {
    const y = i * rowH + 4;
    chart.append(svg("text", { x: labelW - 8, y: y + rowH / 2, class: "bar-label",
      "text-anchor": "end", "dominant-baseline": "middle" }, c.name));
    const bars = [
      { value: c.labelled, y: y + 3, opacity: 1, what: "labelled" },
      { value: c.predicted, y: y + 3 + barH + 2, opacity: 0.38, what: "auto-tagged" },
    ];
    for (const b of bars) {
      const w = Math.max(b.value * scale, b.value ? 2 : 0);
      const rect = svg("rect", { x: labelW, y: b.y, width: w, height: barH, rx: 2,
        fill: c.colour, "fill-opacity": b.opacity });
      rect.append(svg("title", {}, `${c.name}: ${b.value} ${b.what}`));
      chart.append(rect);
      chart.append(svg("text", { x: labelW + w + 6, y: b.y + barH / 2, class: "bar-value",
        "dominant-baseline": "middle" }, num(b.value)));
    }
  });
  box.replaceChildren(chart);
}

// --- learning curve: a line chart ----------------------------------------------------------------

function renderCurve(data) {
  const box = $("curve");
  const points = data.curve;
  if (!points.length) {
    const last = data.last_round;
    box.replaceChildren(empty("No trained round yet.", last && last.message
      ? `${last.message} Label a few images of every class (at least 2 each), then press “Retrain now”.`
      : "Label a few images of every class (at least 2 each); a round starts on its own " +
        "every few labels, or press “Retrain now”."));
    return;
  }
  const W = 520;
  const H = 260;
  const m = { left: 48, right: 16, top: 14, bottom: 38 };
  const xs = points.map((p) => p.n_labels);
  let x0 = Math.min(...xs);
  let x1 = Math.max(...xs);
  if (x0 === x1) { x0 = Math.max(0, x0 - 5); x1 += 5; }
  const accs = points.map((p) => p.accuracy);
  // Zoom the y axis to the data so that small gains are visible, with round ticks (every
  // 2, 5, 10 or 20 %, at most 6 steps; never "52 %, 64 %").
  let y0 = Math.max(0, Math.floor(Math.min(...accs) * 10 - 0.5) / 10);
  const tickStep = [0.02, 0.05, 0.1, 0.2].find((step) => (1 - y0) / step <= 6.001);
  y0 = Math.floor(y0 / tickStep + 1e-9) * tickStep;
  const ticks = Math.round((1 - y0) / tickStep);
  const y1 = 1;
  const px = (x) => m.left + ((x - x0) / (x1 - x0)) * (W - m.left - m.right);
  const py = (y) => H - m.bottom - ((y - y0) / (y1 - y0)) * (H - m.top - m.bottom);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "curve", role: "img",
    "aria-label": points.map((p) =>
      `round ${p.round}: ${pct(p.accuracy)} with ${p.n_labels} labels`).join("; ") });
  for (let i = 0; i <= ticks; i += 1) {
    const v = y0 + ((y1 - y0) * i) / ticks;
    chart.append(svg("line", { x1: m.left, x2: W - m.right, y1: py(v), y2: py(v), class: "grid" }));
    chart.append(svg("text", { x: m.left - 6, y: py(v), class: "tick", "text-anchor": "end",
      "dominant-baseline": "middle" }, `${Math.round(v * 100)} %`));
  }
  const xticks = Array.from(new Set([x0, Math.round((x0 + x1) / 2), x1]));
  for (const v of xticks) {
    chart.append(svg("text", { x: px(v), y: H - m.bottom + 16, class: "tick",
      "text-anchor": "middle" }, num(v)));
  }
  chart.append(svg("text", { x: (m.left + W - m.right) / 2, y: H - 4, class: "axis-title",
    "text-anchor": "middle" }, "labels"));
  chart.append(svg("line", { x1: m.left, x2: W - m.right, y1: H - m.bottom, y2: H - m.bottom,
    class: "axis" }));
  const d = points.map((p, i) => `${i ? "L" : "M"}${px(p.n_labels).toFixed(1)},${py(p.accuracy).toFixed(1)}`).join(" ");
  chart.append(svg("path", { d, class: "line" }));
  points.forEach((p, i) => {
    const dot = svg("circle", { cx: px(p.n_labels), cy: py(p.accuracy), r: 4.5,
      class: i === points.length - 1 ? "dot dot-last" : "dot" });
    dot.append(svg("title", {},
      `Round ${p.round} (${p.strategy}): ${pct(p.accuracy)} accuracy with ${p.n_labels} labels`));
    chart.append(dot);
  });
  const lastPoint = points.at(-1);
  const labelY = py(lastPoint.accuracy) - 10 < m.top + 6
    ? py(lastPoint.accuracy) + 20 // no room above the top grid line: write it below the dot
    : py(lastPoint.accuracy) - 10;
  chart.append(svg("text", { x: Math.min(px(lastPoint.n_labels) - 8, W - m.right - 4),
    y: labelY, class: "dot-label", "text-anchor": "end" }, pct(lastPoint.accuracy)));
  box.replaceChildren(chart);
}

// --- calibration: the reliability curve of the round's out-of-fold predictions --------------

function renderCalibration(data) {
  const box = $("calibration");
  const c = data.latest_round && data.latest_round.calibration;
  if (!c) {
    $("calibration-sub").textContent = "How often an auto-tag is right, against the confidence it shows.";
    box.replaceChildren(empty("No calibration yet.",
      "It is measured by cross-validation once every class has at least 2 labels."));
    return;
  }
  const nbsp = (x) => pct(x).replace(" ", "\u00a0"); // "4.2 %" never splits a line
  $("calibration-sub").textContent =
    `Out-of-fold predictions of ${num(c.n)} labels in round ${data.latest_round.number}: ` +
    `expected calibration error ${nbsp(c.ece)} (${nbsp(c.ece_raw)} before scaling the ` +
    `confidences by the temperature ${c.temperature.toFixed(2)}). On the diagonal, a ` +
    "confidence of 80 % is right 80 % of the time.";
  const W = 320;
  const H = 260;
  const m = { left: 44, right: 22, top: 10, bottom: 36 };
  const px = (x) => m.left + x * (W - m.left - m.right);
  const py = (y) => H - m.bottom - y * (H - m.top - m.bottom);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "curve reliability", role: "img",
    "aria-label": c.bins.map((b) =>
      `confidence ${pct(b.confidence)}: right ${pct(b.accuracy)} of ${b.count}`).join("; ") });
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    chart.append(svg("line", { x1: m.left, x2: W - m.right, y1: py(v), y2: py(v), class: "grid" }));
    chart.append(svg("text", { x: m.left - 6, y: py(v), class: "tick", "text-anchor": "end",
      "dominant-baseline": "middle" }, `${v * 100} %`));
    chart.append(svg("text", { x: px(v), y: H - m.bottom + 16, class: "tick",
      "text-anchor": "middle" }, `${v * 100} %`));
  }
  chart.append(svg("text", { x: (m.left + W - m.right) / 2, y: H - 4, class: "axis-title",
    "text-anchor": "middle" }, "confidence shown"));
  chart.append(svg("line", { x1: px(0), y1: py(0), x2: px(1), y2: py(1), class: "diagonal" }));
  const most = Math.max(...c.bins.map((b) => b.count));
  const series = [[c.bins_raw, "raw", "before scaling"], [c.bins, "calibrated", "shown"]];
  for (const [bins, kind, words] of series) {
    const d = bins.map((b, i) =>
      `${i ? "L" : "M"}${px(b.confidence).toFixed(1)},${py(b.accuracy).toFixed(1)}`).join(" ");
    chart.append(svg("path", { d, class: `line line-${kind}` }));
    for (const b of bins) {
      const dot = svg("circle", { cx: px(b.confidence), cy: py(b.accuracy),
        r: (2.5 + 4 * Math.sqrt(b.count / most)).toFixed(1), class: `dot dot-${kind}` });
      dot.append(svg("title", {}, `${words}: confidence ${pct(b.confidence)}, right ` +
        `${pct(b.accuracy)} of ${num(b.count)} predictions`));
      chart.append(dot);
    }
  }
  box.replaceChildren(chart);
}

// --- the stopping hint: accuracy now, and what more labels buy -------------------------------

function renderOutlook(data) {
  const box = $("outlook");
  const o = data.outlook;
  if (!o) {
    box.replaceChildren(empty("No estimate yet.",
      "It appears once a round has cross-validated (every class with at least 2 labels)."));
    return;
  }
  const gain = typeof o.gain_next_100 === "number" ? `+${(o.gain_next_100 * 100).toFixed(1)} points` : "–";
  const rows = el("dl", { class: "outlook" });
  for (const [term, value, id] of [
    ["Auto-tag accuracy", `${pct(o.accuracy)}`, "outlook-accuracy"],
    ["95 % interval", `${pct(o.low)} – ${pct(o.high)}`, "outlook-interval"],
    ["Next 100 labels", gain, "outlook-gain"],
  ]) {
    rows.append(el("dt", {}, term), el("dd", { id }, value));
  }
  box.replaceChildren(rows, el("p", { class: "hint", id: "outlook-note" }, o.note));
}

// --- per-class precision/recall and the confusion matrix -------------------------------------

function meter(value, kind) {
  const wrap = el("span", { class: "meter" });
  const bar = el("span", { class: `meter-bar meter-${kind}` });
  bar.style.width = `${Math.round((value || 0) * 100)}%`; // CSSOM, allowed by a strict CSP
  const label = el("span", { class: "meter-value" }, pct(value));
  wrap.append(el("span", { class: "meter-track" }), label);
  wrap.firstChild.append(bar);
  return wrap;
}

function renderRound(data) {
  const r = data.latest_round;
  const perClass = $("per-class");
  const confusion = $("confusion");
  if (!r || !r.per_class || !r.confusion) {
    const why = r
      ? "The active round could not cross-validate yet: every class needs at least 2 labels."
      : "Metrics appear once a round has trained on labels of at least two classes.";
    $("pr-sub").textContent = "Per class, in the active round.";
    perClass.replaceChildren(empty("No metrics yet.", why));
    confusion.replaceChildren(empty("No confusion matrix yet.", why));
    fitConfusion();
    return;
  }
  // Label quality: cleanlab's estimate of the share of each class's labels that are right.
  const quality = r.label_quality;
  $("pr-sub").textContent = `Per class, in round ${r.number} (${num(r.n_labels)} labels, ` +
    `macro F1 ${pct(r.macro_f1)}` +
    (quality ? `, label health ${pct(quality.overall)}). Label quality is cleanlab's ` +
      "estimate of the share of right labels, from the same cross-validated predictions: " +
      "while accuracy is low it mostly reflects the model's confusion." : ").");
  const names = r.labels;
  const columns = [{ label: "Class" }, { label: "Precision" }, { label: "Recall" }];
  if (quality) columns.push({ label: "Label quality" });
  columns.push({ label: "Labels", num: true });
  perClass.replaceChildren(table(
    columns,
    names.map((name) => {
      const m = r.per_class[name] || {};
      const row = [name, meter(m.precision, "precision"), meter(m.recall, "recall")];
      if (quality) {
        const q = quality.per_class[name];
        const cell = meter(q ? q.quality : null, "quality");
        if (q) cell.title = `${num(q.label_issues)} of ${num(q.given)} labels look wrong`;
        row.push(cell);
      }
      row.push(num(m.support ?? 0));
      return row;
    }),
    "table dash-table pr-table",
  ));

  const t = el("table", { class: "confusion", id: "confusion-table" });
  const head = el("tr");
  head.append(el("th", { scope: "col", class: "corner" }, "given ╲ predicted"));
  for (const name of names) head.append(el("th", { scope: "col", class: "col-head" }, name));
  const thead = el("thead");
  thead.append(head);
  t.append(thead);
  const body = el("tbody");
  r.confusion.forEach((row, i) => {
    const tr = el("tr");
    tr.append(el("th", { scope: "row" }, names[i]));
    const rowTotal = row.reduce((a, b) => a + b, 0) || 1;
    row.forEach((count, j) => {
      const share = count / rowTotal;
      const td = el("td", { class: i === j ? "diag" : "off",
        title: `${count} images labelled ${names[i]} were predicted ${names[j]}` }, num(count));
      // Shade by the share of the row, so rare classes read as clearly as common ones.
      const hue = i === j ? "11, 99, 206" : "180, 35, 24";
      td.style.backgroundColor = `rgba(${hue}, ${(0.06 + share * 0.84).toFixed(3)})`;
      if (share > 0.55) td.classList.add("dark");
      tr.append(td);
    });
    body.append(tr);
  });
  t.append(body);
  confusion.replaceChildren(t);
  fitConfusion();
}

// A matrix too wide for its half of the grid takes the whole row, with precision and
// recall beside it above; only when even that is too narrow (a small window, many classes)
// does it scroll, and then it says so. The class names stay in view while it scrolls.
function fitConfusion() {
  const wrap = $("confusion");
  const table = $("confusion-table");
  const panels = [$("pr-panel"), $("confusion-panel")];
  for (const panel of panels) panel.classList.remove("wide");
  const overflows = () => table && table.offsetWidth > wrap.clientWidth + 1;
  if (overflows()) for (const panel of panels) panel.classList.add("wide");
  const scrolls = overflows();
  const hint = $("confusion-hint");
  hint.hidden = !scrolls;
  if (scrolls) {
    const columns = table.querySelectorAll("thead th.col-head").length;
    hint.textContent = `Scroll sideways to see all ${columns} predicted classes →`;
  }
  wrap.classList.toggle("scrolls", scrolls);
  // A scrolling region must be reachable by keyboard (arrow keys scroll it once focused).
  if (scrolls) wrap.setAttribute("tabindex", "0");
  else wrap.removeAttribute("tabindex");
}

let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(fitConfusion, 100);
});

// --- annotators and jobs -----------------------------------------------------------------------

function renderAnnotators(data) {
  const box = $("annotators");
  if (!data.annotators.length) {
    box.replaceChildren(empty("Nobody has labelled yet.",
      "Annotators start on the labelling page; their progress appears here."));
    return;
  }
  box.replaceChildren(table(
    [{ label: "Annotator" }, { label: "Labels", num: true }, { label: "Last hour", num: true },
      { label: "Per active hour (7 days)", num: true },
      { label: "Active time (7 days)", num: true }],
    data.annotators.map((a) => [a.username, num(a.labels), num(a.last_hour),
      a.per_hour === null ? "–" : num(a.per_hour), duration(a.active_seconds)]),
  ));
}

// Active time as the annotators' own timestamps measure it (null: no two labels close enough).
function duration(seconds) {
  if (seconds === null) return "–";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function when(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString("en-GB", { dateStyle: "short", timeStyle: "medium" });
}

function renderJobs(data) {
  const box = $("jobs");
  if (!data.jobs.length) {
    box.replaceChildren(empty("No jobs yet.",
      "Import images with `labeler import`; embedding and retraining jobs follow."));
    return;
  }
  box.replaceChildren(table(
    [{ label: "Job" }, { label: "Kind" }, { label: "Status" }, { label: "Progress" },
      { label: "Message" }, { label: "Started" }],
    data.jobs.map((j) => {
      const status = el("span", { class: `status status-${j.status}` }, j.status);
      const progress = el("progress", { max: "1", value: String(j.progress ?? 0),
        "aria-label": `${j.kind} job ${j.job_id}: ${Math.round((j.progress ?? 0) * 100)} %` });
      return [`#${j.job_id}`, j.kind, status, progress,
        el("span", { class: "job-message" }, j.message || ""), when(j.created_at)];
    }),
    "table dash-table jobs-table",
  ));
}

// --- settings ------------------------------------------------------------------------------------

function strategyHelp() {
  const chosen = $("strategy").value;
  const found = (latest?.settings.strategies || []).find((s) => s.name === chosen);
  if (found) $("strategy-help").textContent = found.help;
}

let settingsDirty = false;
function renderSettings(data) {
  if (settingsDirty) return; // never overwrite what the lead is typing
  $("strategy").value = data.settings.strategy;
  $("retrain-every").value = String(data.settings.retrain_every);
  strategyHelp();
}

$("settings-form").addEventListener("input", () => {
  settingsDirty = true;
  $("settings-state").textContent = "";
  strategyHelp();
});

$("settings-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const errorBox = $("settings-error");
  const raw = $("retrain-every").value.trim();
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1) {
    errorBox.textContent = "Retrain every N labels needs a whole number N of at least 1.";
    errorBox.hidden = false;
    $("retrain-every").focus();
    return;
  }
  try {
    const saved = await api("POST", `/projects/${projectId}/settings`,
      { strategy: $("strategy").value, retrain_every: n });
    errorBox.hidden = true;
    settingsDirty = false;
    $("settings-state").textContent =
      `Saved: ${saved.strategy}, retrain every ${saved.retrain_every} labels.`;
    refresh();
  } catch (error) {
    errorBox.textContent = error.message;
    errorBox.hidden = false;
  }
});

// --- retraining ----------------------------------------------------------------------------------

function showRetrain(text, progress) {
  $("retrain-status").hidden = false;
  $("retrain-text").textContent = text;
  $("retrain-progress").value = progress;
}

// `what` names the job ("Retrain", "Fine-tune"); `button` is enabled again when it ends.
async function followJob(jobId, what = "Retrain", button = $("retrain")) {
  try {
    const job = await api("GET", `/jobs/${jobId}`);
    const share = Math.round((job.progress || 0) * 100);
    showRetrain(`${what} job #${job.job_id}: ${job.status}` +
      (job.message ? ` — ${job.message}` : "") +
      (job.status === "running" ? ` (${share} %)` : ""), job.progress || 0);
    $("retrain-status").dataset.status = job.status;
    if (job.status === "succeeded" || job.status === "failed") {
      button.disabled = false;
      refresh();
      return;
    }
  } catch (error) {
    showError(`Could not read the job's progress: ${error.message}`);
  }
  setTimeout(() => followJob(jobId, what, button), 700);
}

$("retrain").addEventListener("click", async () => {
  $("retrain").disabled = true;
  showError("");
  try {
    const job = await api("POST", `/projects/${projectId}/retrain`);
    $("retrain-status").dataset.status = job.status;
    showRetrain(`Retrain job #${job.job_id}: ${job.status}`, 0);
    followJob(job.job_id);
    refresh();
  } catch (error) {
    $("retrain").disabled = false;
    showError(error.status === 409
      ? `${error.message} Its progress shows in the job list below.`
      : `Could not start a retrain round: ${error.message}`);
  }
});

// --- fine-tuning ---------------------------------------------------------------------------------

$("finetune").addEventListener("click", async () => {
  $("finetune").disabled = true;
  showError("");
  try {
    const job = await api("POST", `/projects/${projectId}/finetune`);
    $("retrain-status").dataset.status = job.status;
    showRetrain(`Fine-tune job #${job.job_id}: ${job.status}`, 0);
    followJob(job.job_id, "Fine-tune", $("finetune"));
    refresh();
  } catch (error) {
    $("finetune").disabled = false;
    showError(error.status === 409
      ? `${error.message} Its progress shows in the job list below.`
      : `Could not start fine-tuning: ${error.message}`);
  }
});

function renderFineTune(data) {
  const box = $("finetune-result");
  const f = data.finetune;
  box.hidden = !f;
  if (!f) return;
  const pct = (x) => `${(x * 100).toFixed(1)} %`;
  const verdict = f.adopted
    ? (f.pending ? "adopted; the pool is being embedded with it (the current model serves " +
                   "until that is done)" : "adopted")
    : "not adopted: the frozen backbone stays";
  box.textContent = `Last fine-tune (${new Date(f.at).toLocaleString()}, ${num(f.n_labels)} ` +
    `labels): held-out accuracy ${pct(f.finetuned_accuracy)} fine-tuned against ` +
    `${pct(f.frozen_accuracy)} frozen — ${verdict}.`;
}

// --- refresh loop --------------------------------------------------------------------------------

let loadFailed = false;
async function refresh() {
  clearTimeout(pollTimer);
  try {
    const data = await api("GET", `/projects/${projectId}/dashboard`);
    latest = data;
    renderKpis(data);
    renderClasses(data);
    renderCurve(data);
    renderRound(data);
    renderCalibration(data);
    renderOutlook(data);
    renderAnnotators(data);
    renderJobs(data);
    renderSettings(data);
    renderFineTune(data);
    root.dataset.loaded = "true";
    if (loadFailed) showError(""); // only clear our own message, not a retrain error
    loadFailed = false;
  } catch (error) {
    loadFailed = true;
    showError(`Could not load the dashboard: ${error.message}`);
  }
  pollTimer = setTimeout(refresh, latest?.any_job_active ? FAST_POLL_MS : SLOW_POLL_MS);
}

refresh();
