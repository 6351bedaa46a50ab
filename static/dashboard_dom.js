// Small DOM and SVG helpers the dashboard's modules share. Text goes in through
// textContent and attributes only.

export const SVG = "http://www.w3.org/2000/svg";

export function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

export function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

export function empty(message, hint) {
  const box = el("div", { class: "empty-state" });
  box.append(el("p", { class: "empty-title" }, message));
  if (hint) box.append(el("p", { class: "empty-hint" }, hint));
  return box;
}

export const pct = (x) => (typeof x === "number" ? `${(x * 100).toFixed(1)} %` : "–");
export const num = (x) => new Intl.NumberFormat("en").format(x);

export function table(headers, rows, className = "table dash-table") {
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

export function meter(value, kind) {
  const wrap = el("span", { class: "meter" });
  const bar = el("span", { class: `meter-bar meter-${kind}` });
  bar.style.width = `${Math.round((value || 0) * 100)}%`; // CSSOM, allowed by a strict CSP
  const label = el("span", { class: "meter-value" }, pct(value));
  wrap.append(el("span", { class: "meter-track" }), label);
  wrap.firstChild.append(bar);
  return wrap;
}
