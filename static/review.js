// The review page: one label at a time; Enter (or A) accepts it, a class key corrects it.
// Each verdict waits for the server's answer before the next label shows: a review is
// rarer and weightier than a label, and a 409 (changed meanwhile) must be seen.

import { apiClient } from "./api.js";

const app = document.getElementById("review-app");
const projectId = app.dataset.projectId;
const api = apiClient(app.dataset.csrf);
const classes = JSON.parse(app.dataset.classes);
const keyToLabel = new Map(classes.filter((c) => c.key).map((c) => [c.key.toLowerCase(), c.name]));

const state = { queue: [], busy: false, done: 0, seen: new Set() };
const $ = (id) => document.getElementById(id);

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function render() {
  const item = state.queue[0];
  $("review-empty").hidden = Boolean(item) || state.busy;
  $("review-image").hidden = !item;
  $("review-count").textContent = `${state.done} reviewed`;
  if (!item) {
    $("review-label").textContent = "";
    $("review-prediction").textContent = "";
    $("review-caption").textContent = "";
    return;
  }
  $("review-image").src = item.image_url;
  $("review-label").textContent = `${item.label}, by ${item.annotator}`;
  $("review-prediction").textContent = item.predicted
    ? `${item.predicted}, ${Math.round(item.confidence * 100)}\u00a0% sure`
      + (item.suspected_error ? " · suspected label error" : "")
    : "No prediction yet.";
  $("review-caption").textContent = `Image ${item.image_id}`;
}

async function load() {
  state.busy = true;
  try {
    const order = $("review-order").value;
    const data = await api("GET", `/projects/${projectId}/review?order=${order}&n=20`);
    state.queue = data.items.filter((item) => !state.seen.has(item.annotation_id));
    showError("");
  } catch (error) {
    showError(`Could not load labels to review: ${error.message}`);
  } finally {
    state.busy = false;
    render();
  }
}

async function verdict(label) {
  const item = state.queue[0];
  if (!item || state.busy) return;
  state.busy = true;
  const body = { annotation_id: item.annotation_id };
  if (label && label !== item.label) body.label = label; // the same class is an accept
  try {
    await api("POST", `/projects/${projectId}/reviews`, body);
    state.done += 1;
    showError("");
  } catch (error) {
    showError(error.status === 409 ? error.message : `Not saved: ${error.message}`);
  } finally {
    state.seen.add(item.annotation_id);
    state.queue.shift();
    state.busy = false;
  }
  if (!state.queue.length) await load();
  render();
}

document.addEventListener("keydown", (event) => {
  if (event.altKey || event.ctrlKey || event.metaKey) return;
  if (event.target instanceof HTMLSelectElement) return;
  const key = event.key.toLowerCase();
  if (event.key === "Enter" || key === "a") {
    verdict(null);
  } else if (keyToLabel.has(key)) {
    verdict(keyToLabel.get(key));
  } else {
    return;
  }
  event.preventDefault();
});

for (const button of document.querySelectorAll(".class-button")) {
  button.addEventListener("click", () => verdict(button.dataset.label));
}
$("review-order").addEventListener("change", () => {
  state.seen.clear();
  load();
});
load();
