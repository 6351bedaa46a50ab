// The dashboard of a multi-label project: per-tag quality (precision, recall, F1, average
// precision, decision threshold) and a learning curve of micro F1, macro F1 and mAP.

import { el, empty, meter, num, pct, svg, table } from "./dashboard_dom.js";

const SERIES = [
  { key: "micro_f1", name: "micro F1", className: "line-micro" },
  { key: "macro_f1", name: "macro F1", className: "line-macro" },
  { key: "map", name: "mAP", className: "line-map" },
];

const WHY_NOT_YET = "Metrics appear once a round has cross-validated: every tag needs at " +
  "least 2 images with it and 2 without it among the labelled images.";

/** Micro/macro F1 and mAP of every trained round, against the number of labels. */
export function renderTagCurve(box, data) {
  const points = data.curve.filter((p) => SERIES.some((s) => typeof p[s.key] === "number"));
  if (!points.length) {
    box.replaceChildren(empty("No trained round yet.",
      "Label a few images (each tag on at least 2 of them, and missing from 2); a round " +
      "starts on its own every few labels, or press “Retrain now”."));
    return;
  }
  const W = 520;
  const H = 260;
  const m = { left: 48, right: 16, top: 14, bottom: 38 };
  let x0 = Math.min(...points.map((p) => p.n_labels));
  let x1 = Math.max(...points.map((p) => p.n_labels));
  if (x0 === x1) { x0 = Math.max(0, x0 - 5); x1 += 5; }
  const px = (x) => m.left + ((x - x0) / (x1 - x0)) * (W - m.left - m.right);
  const py = (y) => H - m.bottom - y * (H - m.top - m.bottom);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "curve", role: "img",
    "aria-label": points.map((p) => `round ${p.round} with ${p.n_labels} labels: ` +
      SERIES.map((s) => `${s.name} ${pct(p[s.key])}`).join(", ")).join("; ") });
  for (let i = 0; i <= 5; i += 1) {
    const v = i / 5;
    chart.append(svg("line", { x1: m.left, x2: W - m.right, y1: py(v), y2: py(v), class: "grid" }));
    chart.append(svg("text", { x: m.left - 6, y: py(v), class: "tick", "text-anchor": "end",
      "dominant-baseline": "middle" }, `${Math.round(v * 100)} %`));
  }
  for (const v of new Set([x0, Math.round((x0 + x1) / 2), x1])) {
    chart.append(svg("text", { x: px(v), y: H - m.bottom + 16, class: "tick",
      "text-anchor": "middle" }, num(v)));
  }
  chart.append(svg("text", { x: (m.left + W - m.right) / 2, y: H - 4, class: "axis-title",
    "text-anchor": "middle" }, "labels"));
  for (const s of SERIES) {
    const shown = points.filter((p) => typeof p[s.key] === "number");
    if (!shown.length) continue;
    const d = shown.map((p, i) =>
      `${i ? "L" : "M"}${px(p.n_labels).toFixed(1)},${py(p[s.key]).toFixed(1)}`).join(" ");
    chart.append(svg("path", { d, class: `line ${s.className}` }));
    for (const p of shown) {
      const dot = svg("circle", { cx: px(p.n_labels), cy: py(p[s.key]), r: 4,
        class: `dot ${s.className}`, "data-series": s.key });
      dot.append(svg("title", {},
        `Round ${p.round} (${p.strategy}): ${s.name} ${pct(p[s.key])} with ${p.n_labels} labels`));
      chart.append(dot);
    }
  }
  const legend = el("p", { class: "curve-legend" });
  for (const s of SERIES) {
    const key = el("span", { class: `legend-key ${s.className}` });
    legend.append(key, el("span", {}, `${s.name} ${pct(points.at(-1)[s.key])}`));
  }
  box.replaceChildren(chart, legend);
}

/** The per-tag table of the active round, and the round's summary line. */
export function renderTagRound(box, sub, round) {
  if (!round || !round.per_tag) {
    sub.textContent = "Per tag, in the active round.";
    box.replaceChildren(empty("No metrics yet.", round
      ? `The active round could not cross-validate yet. ${WHY_NOT_YET}` : WHY_NOT_YET));
    return;
  }
  sub.textContent = `Per tag, in round ${round.number} (${num(round.n_labels)} labelled images, ` +
    `micro F1 ${pct(round.micro_f1)}, macro F1 ${pct(round.macro_f1)}, mAP ${pct(round.map)}). ` +
    "Out-of-fold predictions; a tag is predicted when its probability reaches its threshold, " +
    "chosen to maximise its F1.";
  const rows = Object.entries(round.per_tag).map(([name, m]) => [
    name, meter(m.precision, "precision"), meter(m.recall, "recall"), meter(m.f1, "f1"),
    meter(m.average_precision, "ap"),
    typeof m.threshold === "number" ? m.threshold.toFixed(2) : "–",
    num(m.support ?? 0),
  ]);
  box.replaceChildren(table(
    [{ label: "Tag" }, { label: "Precision" }, { label: "Recall" }, { label: "F1" },
      { label: "Average precision" }, { label: "Threshold", num: true },
      { label: "Images with it", num: true }],
    rows, "table dash-table pr-table tag-table"));
}

/** Tags per labelled image: how many tags an answer carries on average. */
export function cardinalityText(round) {
  return round && typeof round.cardinality === "number" ? round.cardinality.toFixed(2) : "–";
}
