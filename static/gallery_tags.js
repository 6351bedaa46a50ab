// Tiles of a multi-label project's gallery: an image's tags as badges (solid: labelled;
// dashed with "?": the model's predicted tags on an image nobody labelled yet), and the
// probability of the tag the gallery is filtered by. Text only ever through textContent.

const percent = (p) => `${Math.round(p * 100)}%`;

function el(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

function badge(name, colour, predicted, probability) {
  const node = el("span", predicted ? "g-badge g-badge-pred" : "g-badge g-badge-label",
    predicted ? `${name}?` : name);
  node.style.setProperty("--chip", colour || "#5f6270");
  const p = typeof probability === "number" ? `, ${percent(probability)} probability` : "";
  node.title = predicted ? `Predicted tag ${name}${p}, not yet confirmed` : `Tagged ${name}${p}`;
  return node;
}

/** The caption of one tile: its tag set, or what the model predicts for it. */
export function tagCaptionNodes(item, colourOf, filterTag) {
  const probabilities = item.tag_probabilities || {};
  const nodes = [];
  if (Array.isArray(item.labels)) {
    if (!item.labels.length) {
      const none = el("span", "g-badge g-badge-none", "none of these");
      none.title = "Labelled: none of the tags applies";
      nodes.push(none);
    }
    for (const name of item.labels) {
      nodes.push(badge(name, colourOf.get(name), false, probabilities[name]));
    }
  } else if (Object.keys(probabilities).length) {
    const predicted = item.predicted_labels || [];
    if (!predicted.length) nodes.push(el("span", "g-badge g-badge-none", "no tags?"));
    for (const name of predicted) {
      nodes.push(badge(name, colourOf.get(name), true, probabilities[name]));
    }
  } else {
    nodes.push(el("span", "g-badge g-badge-none", "unlabelled"));
  }
  if (filterTag && typeof probabilities[filterTag] === "number") {
    const model = el("span", "g-model", `${filterTag} ${percent(probabilities[filterTag])}`);
    model.title = `The model gives ${filterTag} ${percent(probabilities[filterTag])}`;
    nodes.push(model);
  }
  return nodes;
}

/** The tags a bulk change starts from: the labelled set, else the predicted one. */
export function shownTags(item) {
  return Array.isArray(item.labels) ? item.labels : item.predicted_labels || [];
}
