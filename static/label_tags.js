// Tags on the labelling page of a multi-label project: the annotator's draft set for the
// image on screen, drawn on the tag buttons. The model's predicted tags start toggled on and
// are marked as suggestions until the annotator touches them.

export function newDraft(item) {
  const predicted = (item && item.predicted_labels) || [];
  return { chosen: new Set(predicted), suggested: new Set(predicted), touched: new Set() };
}

// A draft of tags the annotator already answered (a relabel or an undone answer): all theirs.
export function ownDraft(labels) {
  return { chosen: new Set(labels), suggested: new Set(), touched: new Set(labels), own: true };
}

// Whether a new round's suggestions may replace the draft: only if nobody touched it.
export function untouched(draft) {
  return !draft.own && !draft.touched.size;
}

export function toggle(draft, name) {
  if (draft.chosen.has(name)) draft.chosen.delete(name);
  else draft.chosen.add(name);
  draft.touched.add(name);
}

// The draft's tags in the project's order (the order of the keys), as the API takes them.
export function chosenLabels(draft, classes) {
  return classes.map((c) => c.name).filter((name) => draft.chosen.has(name));
}

const percent = (p) => `${Math.round(p * 100)}\u00a0%`;

export function describeSet(labels) {
  return labels.length ? labels.join(", ") : "none of these";
}

/** Draw the draft on the tag buttons and say what Enter will save. */
export function renderTags(draft, item, { reviewing }) {
  const probabilities = (item && item.tag_probabilities) || {};
  for (const button of document.querySelectorAll(".tag-button")) {
    const name = button.dataset.label;
    const on = Boolean(draft && draft.chosen.has(name));
    const suggested = Boolean(draft && draft.suggested.has(name) && !draft.touched.has(name));
    button.classList.toggle("tag-on", on);
    button.classList.toggle("tag-suggested", suggested);
    button.setAttribute("aria-pressed", on ? "true" : "false");
    const p = probabilities[name];
    const prob = button.querySelector(".tag-prob");
    prob.textContent = typeof p === "number" ? percent(p) : "";
    button.title = typeof p === "number"
      ? `${name}: the model gives ${percent(p)}` +
        (suggested ? "; suggested by the model, press its key to turn it off" : "")
      : name;
  }
  const line = document.getElementById("tag-set");
  if (!draft) {
    line.textContent = "";
    return;
  }
  const inKeyOrder = Array.from(document.querySelectorAll(".tag-button"), (b) => b.dataset.label)
    .filter((name) => draft.chosen.has(name));
  const what = document.createElement("strong");
  what.textContent = describeSet(inKeyOrder);
  line.replaceChildren(reviewing ? "Enter changes the earlier answer to: " : "Enter saves: ", what);
  line.classList.toggle("tag-set-empty", !inKeyOrder.length);
}

/** The side panel's "Model suggests": the predicted tags and every tag's probability. */
export function renderSuggestions(item) {
  const prediction = document.getElementById("prediction");
  const list = document.getElementById("probabilities");
  const probabilities = Object.entries(item.tag_probabilities || {});
  if (!probabilities.length) {
    prediction.textContent =
      "No prediction yet: the first rounds need a few images with and without each tag.";
    list.replaceChildren();
    list.hidden = true;
    return;
  }
  const predicted = item.predicted_labels || [];
  prediction.textContent = predicted.length
    ? `${predicted.join(", ")} (toggled on for you)`
    : "None of these tags (nothing toggled on)";
  probabilities.sort((a, b) => b[1] - a[1]);
  list.replaceChildren(...probabilities.map(([name, p]) => {
    const li = document.createElement("li");
    li.textContent = `${name}: ${(p * 100).toFixed(1)} %`;
    if (predicted.includes(name)) li.classList.add("predicted-tag");
    return li;
  }));
  list.hidden = false;
}
