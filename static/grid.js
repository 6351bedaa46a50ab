// Grid mode: a grid of images the model predicts as one class, every tile selected.
// The annotator deselects the wrong ones (click, or arrows + Space); Enter labels the
// selected with the class and releases the rest to single-image mode, then the next grid.

import { apiClient } from "./api.js";

const app = document.getElementById("grid-app");
const projectId = app.dataset.projectId;
const api = apiClient(app.dataset.csrf);
const $ = (id) => document.getElementById(id);

const state = {
  label: null, // the grid's class, null while there is no grid
  tiles: [], // {item, selected, element} in queue order
  focus: 0, // index of the tile with the focus ring
  busy: false, // a grid is being loaded or answered: keys wait
  done: 0, // images confirmed in this sitting
};

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function columns() {
  // 4 across for up to 16 tiles (4x4), 6 across above (6x4).
  return state.tiles.length > 16 ? 6 : 4;
}

function renderCounts() {
  const selected = state.tiles.filter((tile) => tile.selected).length;
  $("count-selected").textContent = state.label ? `${selected} selected` : "";
  $("count-deselected").textContent = state.label
    ? `${state.tiles.length - selected} deselected` : "";
  $("count-done").textContent = `${state.done} labelled in grids`;
}

function renderTile(tile) {
  tile.element.setAttribute("aria-pressed", String(tile.selected));
  tile.element.classList.toggle("deselected", !tile.selected);
}

function setFocus(index, moveFocus = true) {
  if (!state.tiles.length) return;
  state.focus = Math.max(0, Math.min(state.tiles.length - 1, index));
  state.tiles.forEach((tile, i) => {
    tile.element.tabIndex = i === state.focus ? 0 : -1; // one tab stop: a roving tabindex
    tile.element.classList.toggle("focused", i === state.focus);
  });
  if (moveFocus) state.tiles[state.focus].element.focus();
}

function toggle(index) {
  const tile = state.tiles[index];
  if (!tile) return;
  tile.selected = !tile.selected;
  renderTile(tile);
  renderCounts();
}

function makeTile(item, index) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "grid-tile";
  button.dataset.imageId = item.image_id;
  const img = document.createElement("img");
  img.src = item.thumbnail_url;
  img.alt = item.original_name.split("/").pop();
  img.classList.toggle("pixelated", Boolean(item.pixelated));
  const caption = document.createElement("span");
  caption.className = "grid-caption";
  caption.textContent = item.prediction
    ? `${Math.round(item.prediction.confidence * 100)}\u00a0% sure` : "";
  const mark = document.createElement("span");
  mark.className = "grid-mark";
  mark.setAttribute("aria-hidden", "true");
  button.append(img, mark, caption);
  button.addEventListener("click", () => {
    setFocus(index, false);
    toggle(index);
  });
  return button;
}

function render(data) {
  state.label = data.label;
  $("grid-class").textContent = data.label || "—";
  const grid = $("grid");
  state.tiles = data.items.map((item, i) => ({ item, selected: true, element: makeTile(item, i) }));
  grid.style.setProperty("--columns", columns());
  grid.replaceChildren(...state.tiles.map((tile) => tile.element));
  state.tiles.forEach(renderTile);
  const empty = $("grid-empty");
  empty.hidden = Boolean(state.tiles.length);
  empty.replaceChildren();
  if (!state.tiles.length) {
    empty.append(data.message || "Nothing to show in a grid right now. ");
    const link = document.createElement("a");
    link.href = `/projects/${projectId}/label`;
    link.textContent = " Go to single-image mode.";
    empty.append(link);
  }
  renderCounts();
  setFocus(0);
}

async function loadGrid() {
  state.busy = true;
  $("save-state").textContent = "loading…";
  try {
    render(await api("GET", `/projects/${projectId}/grid?n=16`));
    showError("");
  } catch (error) {
    showError(`Could not load a grid: ${error.message}`);
  } finally {
    state.busy = false;
    $("save-state").textContent = "";
  }
}

async function confirmGrid() {
  if (!state.label || !state.tiles.length) return;
  state.busy = true;
  $("save-state").textContent = "saving…";
  const confirm = state.tiles.filter((tile) => tile.selected).map((tile) => tile.item.image_id);
  const reject = state.tiles.filter((tile) => !tile.selected).map((tile) => tile.item.image_id);
  try {
    // The next grid loads only once the server acknowledged this one: no label is lost.
    const answer = await api("POST", `/projects/${projectId}/grid`,
      { label: state.label, confirm, reject });
    state.done += answer.confirmed;
    state.busy = false;
    await loadGrid();
  } catch (error) {
    state.busy = false;
    $("save-state").textContent = "";
    showError(`This grid was NOT saved: ${error.message}`);
  }
}

document.addEventListener("keydown", (event) => {
  if (event.altKey || event.ctrlKey || event.metaKey) return;
  if (state.busy) {
    if (["Enter", " ", "ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"].includes(event.key)) {
      event.preventDefault();
    }
    return;
  }
  const across = columns();
  if (event.key === "ArrowLeft") setFocus(state.focus - 1);
  else if (event.key === "ArrowRight") setFocus(state.focus + 1);
  else if (event.key === "ArrowUp") setFocus(state.focus - across);
  else if (event.key === "ArrowDown") setFocus(state.focus + across);
  // Handled here, not by the focused button's own activation, so a key acts exactly once.
  else if (event.key === " ") toggle(state.focus);
  else if (event.key === "Enter") confirmGrid();
  else return;
  event.preventDefault();
});

loadGrid();
