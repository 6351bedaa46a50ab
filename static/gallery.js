// The gallery: select tiles with mouse or keyboard, label them in one request, load more
// pages by cursor. Data from the server is only ever written with textContent.

import { apiClient } from "./api.js";
import { tagCaptionNodes } from "./gallery_tags.js";

const app = document.getElementById("gallery-app");
const projectId = app.dataset.projectId;
const csrfToken = app.dataset.csrf;
const api = apiClient(csrfToken);
const classes = JSON.parse(app.dataset.classes);
const colourOf = new Map(classes.map((c) => [c.name, c.colour]));
// A multi-label project: tiles show tag sets; the toolbar adds and removes tags.
const multiLabel = app.dataset.multiLabel === "true";
const filterTag = app.dataset.filterTag || "";
const grid = document.getElementById("g-grid");
const $ = (id) => document.getElementById(id);

const state = {
  cursor: app.dataset.nextCursor || null,
  selected: new Set(), // image ids (strings, as in data-image-id)
  anchor: null, // index of the last tile clicked or toggled: the start of a Shift range
  busy: false,
};


function showError(message) {
  const box = $("g-error");
  box.textContent = message;
  box.hidden = !message;
}

function showStatus(message) {
  $("g-status").textContent = message;
}

const tiles = () => Array.from(grid.querySelectorAll(".g-tile"));

// --- rendering -----------------------------------------------------------------------------

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const percent = (confidence) => `${Math.round(confidence * 100)}%`;

function captionNodes(item) {
  if (multiLabel) return tagCaptionNodes(item, colourOf, filterTag);
  const nodes = [];
  const hasConfidence = typeof item.confidence === "number";
  if (item.label) {
    const badge = el("span", "g-badge g-badge-label", item.label);
    badge.style.setProperty("--chip", item.label_colour || colourOf.get(item.label) || "#5f6270");
    badge.title = `Labelled ${item.label}`;
    nodes.push(badge);
    if (item.predicted && hasConfidence) {
      const prefix = item.predicted !== item.label ? `model: ${item.predicted} ` : "";
      const model = el("span", "g-model", `${prefix}${percent(item.confidence)}`);
      model.title = `The model predicts ${item.predicted}, ${percent(item.confidence)} sure`;
      nodes.push(model);
    }
  } else if (item.predicted) {
    const badge = el("span", "g-badge g-badge-pred", `${item.predicted}?`);
    badge.style.setProperty("--chip", item.predicted_colour || colourOf.get(item.predicted) || "#5f6270");
    badge.title = `Predicted ${item.predicted}, not yet confirmed`;
    nodes.push(badge);
    if (hasConfidence) {
      const model = el("span", "g-model", percent(item.confidence));
      model.title = `The model is ${percent(item.confidence)} sure`;
      nodes.push(model);
    }
  } else {
    nodes.push(el("span", "g-badge g-badge-none", "unlabelled"));
  }
  return nodes;
}

// Flags sit on the thumbnail's corner, so the caption keeps its room for class names.
function flagNodes(item) {
  const nodes = [];
  if (item.suspected_error) {
    const flag = el("span", "g-flag g-flag-suspect", "check");
    flag.title = "Suspected label error: the model strongly disagrees with this label";
    nodes.push(flag);
  }
  if (item.duplicate_group !== null && item.duplicate_group !== undefined) {
    const flag = el("span", "g-flag g-flag-dup", `≈${item.duplicate_group}`);
    flag.title = `Near-duplicate group ${item.duplicate_group}: images that look almost the same`;
    flag.setAttribute("aria-label", `near-duplicate group ${item.duplicate_group}`);
    nodes.push(flag);
  }
  return nodes;
}

function tileFor(item) {
  const li = el("li", "g-tile");
  li.setAttribute("role", "option");
  li.setAttribute("aria-selected", "false");
  li.tabIndex = -1;
  li.dataset.imageId = String(item.image_id);
  li.dataset.detailUrl = item.detail_url;
  li.dataset.predicted = item.predicted || "";
  li.dataset.label = item.label || "";
  const thumb = el("div", item.pixelated ? "g-thumb g-pixelated" : "g-thumb");
  const img = el("img");
  img.src = item.thumbnail_url;
  img.alt = item.original_name;
  img.loading = "lazy";
  img.decoding = "async";
  img.width = 256;
  img.height = 256;
  const flags = el("span", "g-flags");
  flags.replaceChildren(...flagNodes(item));
  thumb.append(img, flags);
  const caption = el("div", "g-caption");
  caption.replaceChildren(...captionNodes(item));
  const open = el("a", "g-open", "Details");
  open.href = item.detail_url;
  open.tabIndex = -1;
  open.title = `Open ${item.original_name}`;
  li.append(thumb, caption, open);
  // Keep what the caption needs, so a bulk update can redraw it without a round trip.
  li._item = item;
  return li;
}

// Server-rendered tiles carry their data in data- attributes; rebuild the item once.
function itemOf(tile) {
  if (!tile._item && tile.dataset.item) tile._item = JSON.parse(tile.dataset.item);
  if (!tile._item) {
    const data = tile.dataset;
    tile._item = {
      image_id: Number(data.imageId),
      label: data.label || null,
      predicted: data.predicted || null,
      confidence: data.confidence ? Number(data.confidence) : null,
      suspected_error: data.suspected === "true",
      duplicate_group: data.duplicateGroup ? Number(data.duplicateGroup) : null,
    };
  }
  return tile._item;
}

// --- selection -----------------------------------------------------------------------------

function setSelected(tile, on) {
  const id = tile.dataset.imageId;
  if (on) state.selected.add(id);
  else state.selected.delete(id);
  tile.setAttribute("aria-selected", on ? "true" : "false");
}

function updateToolbar() {
  const count = state.selected.size;
  $("g-selected").textContent =
    count === 0 ? "No images selected" : `${count} image${count === 1 ? "" : "s"} selected`;
  const none = count === 0 || state.busy;
  $("g-confirm").disabled = none;
  const select = $(multiLabel ? "g-tag-select" : "g-label-select");
  const noChoice = none || !select.options.length;
  select.disabled = noChoice;
  for (const id of multiLabel ? ["g-add-tag", "g-remove-tag"] : ["g-apply"]) {
    $(id).disabled = noChoice;
  }
  $("g-clear").disabled = count === 0;
}

function selectRange(from, to) {
  const all = tiles();
  const [lo, hi] = from < to ? [from, to] : [to, from];
  for (let i = lo; i <= hi; i += 1) setSelected(all[i], true);
}

function focusTile(index) {
  const all = tiles();
  if (!all.length) return;
  const i = Math.max(0, Math.min(index, all.length - 1));
  for (const tile of all) tile.tabIndex = -1;
  all[i].tabIndex = 0; // roving tabindex: Tab enters the grid at the last focused tile
  all[i].focus();
}

function columns() {
  const all = tiles();
  if (!all.length) return 1;
  const top = all[0].offsetTop;
  const n = all.findIndex((tile) => tile.offsetTop !== top);
  return n === -1 ? all.length : n;
}

function clearSelection() {
  for (const tile of tiles()) setSelected(tile, false);
  state.selected.clear();
  updateToolbar();
}

grid.addEventListener("click", (event) => {
  const tile = event.target.closest(".g-tile");
  if (!tile || event.target.closest(".g-open")) return;
  const index = tiles().indexOf(tile);
  if (event.shiftKey && state.anchor !== null) {
    selectRange(state.anchor, index);
  } else {
    // Plain click and Ctrl/Cmd-click both toggle: selecting many is the point of this page.
    setSelected(tile, !state.selected.has(tile.dataset.imageId));
    state.anchor = index;
  }
  focusTile(index);
  updateToolbar();
});

grid.addEventListener("dblclick", (event) => {
  const tile = event.target.closest(".g-tile");
  if (tile) window.location.href = tile.dataset.detailUrl;
});

grid.addEventListener("keydown", (event) => {
  const all = tiles();
  const index = all.indexOf(document.activeElement);
  if (index === -1) return;
  const step = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -columns(), ArrowDown: columns() }[event.key];
  if (step !== undefined) {
    const next = Math.max(0, Math.min(index + step, all.length - 1));
    if (event.shiftKey) {
      if (state.anchor === null) state.anchor = index;
      selectRange(state.anchor, next);
      updateToolbar();
    }
    focusTile(next);
  } else if (event.key === "Home") {
    focusTile(0);
  } else if (event.key === "End") {
    focusTile(all.length - 1);
  } else if (event.key === " ") {
    if (event.shiftKey && state.anchor !== null) {
      selectRange(state.anchor, index);
    } else {
      setSelected(all[index], !state.selected.has(all[index].dataset.imageId));
      state.anchor = index;
    }
    updateToolbar();
  } else if (event.key.toLowerCase() === "a" && !event.altKey) {
    for (const tile of all) setSelected(tile, true);
    updateToolbar();
  } else if (event.key === "Escape") {
    clearSelection();
  } else if (event.key === "Enter") {
    window.location.href = all[index].dataset.detailUrl;
  } else {
    return;
  }
  event.preventDefault();
});

// --- bulk labelling ------------------------------------------------------------------------

// `path` is the endpoint: bulk-label for classes, bulk-tags for a multi-label project.
async function bulk(body, describe, path = "bulk-label") {
  const ids = Array.from(state.selected, Number);
  if (!ids.length) return;
  state.busy = true;
  updateToolbar();
  showError("");
  showStatus("Saving…");
  const byId = new Map(tiles().map((tile) => [tile.dataset.imageId, tile]));
  try {
    let done = 0;
    // The server takes at most 500 ids a call; "select all" over several pages can exceed it.
    for (let start = 0; start < ids.length; start += 500) {
      const result = await api("POST", `/projects/${projectId}/${path}`, {
        image_ids: ids.slice(start, start + 500),
        ...body,
      });
      for (const updated of result.items) {
        const tile = byId.get(String(updated.image_id));
        if (!tile) continue;
        const item = itemOf(tile);
        if (multiLabel) {
          item.labels = updated.labels;
        } else {
          item.label = updated.label;
          item.label_colour = updated.label_colour;
          tile.dataset.label = updated.label;
        }
        tile.querySelector(".g-caption").replaceChildren(...captionNodes(item));
        tile.classList.remove("g-updated");
        void tile.offsetWidth; // restart the highlight animation
        tile.classList.add("g-updated");
        setSelected(tile, false);
      }
      done += result.updated;
    }
    showStatus(`${describe(done)}.`);
  } catch (error) {
    showStatus("");
    showError(`Nothing was labelled: ${error.message}`);
  } finally {
    state.busy = false;
    updateToolbar();
  }
}

const plural = (n) => `${n} image${n === 1 ? "" : "s"}`;

function confirmTags() {
  const unpredicted = Array.from(state.selected).filter((id) => {
    const tile = grid.querySelector(`.g-tile[data-image-id="${CSS.escape(id)}"]`);
    return tile && !Object.keys(itemOf(tile).tag_probabilities || {}).length;
  });
  if (unpredicted.length) {
    showError(`${unpredicted.length} of the selected images have no predicted tags yet; ` +
      "deselect them or add tags instead.");
    return;
  }
  bulk({ confirm_predictions: true },
    (n) => `Confirmed the predicted tags of ${plural(n)}`, "bulk-tags");
}

if (multiLabel) {
  $("g-confirm").addEventListener("click", confirmTags);
  $("g-add-tag").addEventListener("click", () => {
    const tag = $("g-tag-select").value;
    bulk({ add: [tag] }, (n) => `Added ${tag} to ${plural(n)}`, "bulk-tags");
  });
  $("g-remove-tag").addEventListener("click", () => {
    const tag = $("g-tag-select").value;
    bulk({ remove: [tag] }, (n) => `Removed ${tag} from ${plural(n)}`, "bulk-tags");
  });
  // Server-rendered tiles carry their item as JSON; draw their tags once.
  for (const tile of tiles()) {
    tile.querySelector(".g-caption").replaceChildren(...captionNodes(itemOf(tile)));
  }
} else {
  $("g-confirm").addEventListener("click", confirmSingle);
  $("g-apply").addEventListener("click", () => {
    const label = $("g-label-select").value;
    bulk({ label }, (n) => `Labelled ${n} image${n === 1 ? "" : "s"} as ${label}`);
  });
}

function confirmSingle() {
  const unpredicted = Array.from(state.selected).filter((id) => {
    const tile = grid.querySelector(`.g-tile[data-image-id="${CSS.escape(id)}"]`);
    return tile && !tile.dataset.predicted;
  });
  if (unpredicted.length) {
    showError(`${unpredicted.length} of the selected images have no prediction yet; deselect them ` +
      "or use “Set label” instead.");
    return;
  }
  bulk({ confirm_predictions: true },
    (n) => `Confirmed the prediction of ${n} image${n === 1 ? "" : "s"}`);
}

$("g-clear").addEventListener("click", clearSelection);

// --- more pages ----------------------------------------------------------------------------

async function loadMore() {
  if (!state.cursor) return;
  const button = $("g-load-more");
  button.disabled = true;
  const params = new URLSearchParams(window.location.search);
  params.delete("after");
  params.set("after", state.cursor);
  params.set("limit", "100");
  try {
    const data = await api("GET", `/projects/${projectId}/images?${params}`);
    const first = tiles().length;
    grid.append(...data.items.map(tileFor));
    grid.hidden = false;
    state.cursor = data.next_cursor;
    $("g-shown").textContent = String(tiles().length);
    $("g-total").textContent = data.total.toLocaleString("en");
    button.hidden = !state.cursor;
    showError("");
    if (data.items.length) focusTile(first);
  } catch (error) {
    showError(`Could not load more images: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

$("g-load-more").addEventListener("click", loadMore);
updateToolbar();
