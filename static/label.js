// The labelling page: keyboard first, prefetching, never waiting for the server to move on.
// Labels are sent in the background; "saved" shows once the server acknowledged each one.

import { apiClient } from "./api.js";
import {
  chosenLabels, describeSet, newDraft, ownDraft, renderSuggestions, renderTags, toggle, untouched,
} from "./label_tags.js";

const app = document.getElementById("label-app");
const projectId = app.dataset.projectId;
const csrfToken = app.dataset.csrf;
const api = apiClient(csrfToken);
const classes = JSON.parse(app.dataset.classes);
const keyToLabel = new Map(classes.filter((c) => c.key).map((c) => [c.key.toLowerCase(), c.name]));
// A multi-label project: keys toggle tags, Enter saves the set (labels: [...] in the API).
const multiLabel = app.dataset.multiLabel === "true";

const PREFETCH = 4;
const state = {
  queue: [], // items leased to us, not yet answered; queue[0] is on screen unless reviewing
  history: [], // {item, label | labels, annotationId} of this sitting, oldest first
  drafts: new Map(), // multi-label: image id -> the tags toggled so far (label_tags.js)
  review: null, // index into history while looking back with the arrow keys
  pending: 0, // label requests not yet acknowledged
  fetching: false,
  seen: new Set(), // image ids answered or in hand, so a refill never repeats one
};

const $ = (id) => document.getElementById(id);


function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function preload(item) {
  const image = new Image();
  image.src = item.image_url;
}

async function refill() {
  if (state.fetching || state.queue.length >= PREFETCH) return;
  state.fetching = true;
  try {
    // We ask for what we hold plus PREFETCH more: the server returns our leases first.
    const data = await api("GET", `/projects/${projectId}/next?n=${state.queue.length + state.pending + PREFETCH}`);
    for (const item of data.items) {
      if (!state.seen.has(item.image_id)) {
        state.seen.add(item.image_id);
        state.queue.push(item);
        preload(item);
      }
    }
    showError("");
  } catch (error) {
    showError(`Could not load the next images: ${error.message}`);
  } finally {
    state.fetching = false;
    render();
  }
}

function current() {
  if (state.review !== null) return state.history[state.review].item;
  return state.queue[0] || null;
}

function renderPrediction(item) {
  const reason = item.reason || {};
  const prediction = item.prediction;
  $("accept-hint").hidden = !prediction;
  $("prediction").textContent = prediction
    ? `${prediction.label}, ${Math.round(prediction.confidence * 100)}\u00a0% sure`
    : "No prediction yet: the first rounds need a few labels of each class.";
  const probabilities = $("probabilities");
  probabilities.replaceChildren(
    ...(reason.probabilities || []).map((p) => {
      const li = document.createElement("li");
      li.textContent = `${p.label}: ${(p.probability * 100).toFixed(1)} %`;
      return li;
    }),
  );
  probabilities.hidden = !probabilities.children.length;
}

function renderReason(item) {
  const reason = item.reason || {};
  if (multiLabel) renderSuggestions(item);
  else renderPrediction(item);
  // The server words the reason (labeler/reasons.py); the strategy's name and score are
  // for the curious, in a small line and its tooltip.
  $("reason").textContent = [reason.summary, reason.note].filter(Boolean).join(" ");
  const detail = $("reason-detail");
  const ranked = reason.round && reason.strategy && reason.strategy !== "import order";
  detail.hidden = !ranked;
  detail.textContent = !ranked ? "" : reason.round_trained
    ? `Strategy: ${reason.strategy}, from round ${reason.round}.`
    : `Strategy: ${reason.strategy}, before any model was trained.`;
  detail.title = typeof reason.score === "number"
    ? `Score ${reason.score.toFixed(3)} by this strategy: higher scores are asked sooner.` : "";
  const neighbours = reason.neighbours || [];
  $("neighbours-title").hidden = !neighbours.length;
  $("neighbours").hidden = !neighbours.length;
  $("neighbours").replaceChildren(
    ...neighbours.map((n) => {
      const li = document.createElement("li");
      li.title = "Similarity of the two images' embeddings: 1 means the model sees them as the same.";
      const img = document.createElement("img");
      img.src = `/images/${n.image_id}/thumbnail`;
      img.alt = n.label;
      img.width = 52;
      img.height = 52;
      // Thumbnails of tiny images (28-pixel Fashion-MNIST) stay crisp, as the big image does.
      img.addEventListener("load", () => {
        img.classList.toggle("pixelated", img.naturalWidth < img.width);
      }, { once: true });
      const caption = document.createElement("span");
      caption.textContent = `${n.label} · similarity ${n.similarity.toFixed(2)} of 1`;
      li.append(img, caption);
      return li;
    }),
  );
}

// The tags being edited: the earlier answer while reviewing, else the image on screen's.
function currentDraft() {
  if (state.review !== null) {
    const entry = state.history[state.review];
    if (!entry.draft) entry.draft = ownDraft(entry.labels);
    return entry.draft;
  }
  const item = state.queue[0];
  if (!item) return null;
  if (!state.drafts.has(item.image_id)) state.drafts.set(item.image_id, newDraft(item));
  return state.drafts.get(item.image_id);
}

function answerText(entry) {
  return multiLabel ? describeSet(entry.labels) : entry.label;
}

function render() {
  const item = current();
  if (multiLabel) renderTags(item ? currentDraft() : null, item, { reviewing: state.review !== null });
  const image = $("current-image");
  const empty = $("stage-empty");
  if (!item) {
    image.hidden = true;
    empty.hidden = false;
    empty.textContent = state.fetching ? "Loading…" : "Nothing left to label in this project. Well done!";
    $("stage-caption").textContent = "";
    return;
  }
  empty.hidden = true;
  image.hidden = false;
  if (image.dataset.imageId !== String(item.image_id)) {
    image.src = item.image_url;
    image.alt = item.original_name;
    // Tiny images (e.g. 28-pixel Fashion-MNIST) stay crisp when scaled up, not blurred.
    image.classList.toggle("pixelated", Boolean(item.pixelated));
    image.dataset.imageId = item.image_id;
  }
  const reviewing = state.review !== null ? state.history[state.review] : null;
  $("stage-caption").textContent = !reviewing ? item.original_name.split("/").pop()
    : multiLabel
      ? `Earlier tags: ${answerText(reviewing)} — toggle tags and press Enter to change them, → to go on`
      : `Earlier label: ${reviewing.label} — press a class key to change it, → to go on`;
  renderReason(item);
  if (multiLabel) return;
  for (const button of document.querySelectorAll(".class-button")) {
    button.classList.toggle("chosen", Boolean(reviewing && reviewing.label === button.dataset.label));
  }
}

function updateSaveState() {
  $("save-state").textContent = state.pending ? `saving ${state.pending}…` : "all labels saved";
}

// `answer` is a class name, or in a multi-label project the list of tags (maybe empty).
async function submit(item, answer, historyIndex) {
  state.pending += 1;
  updateSaveState();
  try {
    const annotation = await api("POST", `/projects/${projectId}/annotations`, multiLabel
      ? { image_id: item.image_id, labels: answer }
      : { image_id: item.image_id, label: answer });
    state.history[historyIndex].annotationId = annotation.annotation_id;
    showError("");
  } catch (error) {
    state.history[historyIndex].failed = true;
    showError(`The label for ${item.original_name} was NOT saved: ${error.message}`);
  } finally {
    state.pending -= 1;
    updateSaveState();
    refreshProgress();
  }
}

function label(name) {
  if (state.review !== null) {
    const entry = state.history[state.review];
    entry.label = name;
    submit(entry.item, name, state.review); // a relabel adds a new annotation
    render();
    return;
  }
  const item = state.queue.shift();
  if (!item) return;
  state.history.push({ item, label: name, annotationId: null });
  submit(item, name, state.history.length - 1);
  render();
  refill();
}

function toggleTag(name) {
  const draft = currentDraft();
  if (!draft) return;
  toggle(draft, name);
  render();
}

// Enter in a multi-label project: save the toggled set (an empty one is "none of these").
function submitTags() {
  if (state.review !== null) {
    const entry = state.history[state.review];
    entry.labels = chosenLabels(currentDraft(), classes);
    entry.draft = null;
    submit(entry.item, entry.labels, state.review); // a relabel adds a new annotation
    render();
    return;
  }
  const item = state.queue[0];
  if (!item) return;
  const labels = chosenLabels(currentDraft(), classes);
  state.queue.shift();
  state.drafts.delete(item.image_id);
  state.history.push({ item, labels, annotationId: null });
  submit(item, labels, state.history.length - 1);
  render();
  refill();
}

async function undoLast() {
  const entry = state.history.at(-1);
  if (!entry) return;
  if (!entry.annotationId) {
    showError("That label is still being saved; undo again in a moment.");
    return;
  }
  try {
    await api("DELETE", `/annotations/${entry.annotationId}`);
    state.history.pop();
    state.review = null;
    state.queue.unshift(entry.item);
    // The undone answer comes back toggled, to be corrected rather than redone.
    if (multiLabel) state.drafts.set(entry.item.image_id, ownDraft(entry.labels));
    render();
    refreshProgress();
    refreshHeldItems(); // its prediction may be newer than when it was first shown
  } catch (error) {
    showError(`Could not undo: ${error.message}`);
  }
}

async function skipCurrent() {
  const item = state.queue.shift();
  if (!item) return;
  state.drafts.delete(item.image_id);
  render();
  refill();
  try {
    await api("POST", `/projects/${projectId}/skip`, { image_id: item.image_id });
  } catch (error) {
    showError(`Could not skip: ${error.message}`);
  }
}

function move(step) {
  if (!state.history.length) return;
  if (state.review === null) {
    if (step < 0) state.review = state.history.length - 1;
  } else {
    state.review += step;
    if (state.review < 0) state.review = 0;
    if (state.review >= state.history.length) state.review = null;
  }
  render();
}

// When a round finishes, the images we hold get fresh predictions and reasons.
let knownRound = null;
async function refreshHeldItems() {
  if (!state.queue.length) return;
  try {
    const data = await api("GET", `/projects/${projectId}/next?n=${state.queue.length}`);
    const fresh = new Map(data.items.map((item) => [item.image_id, item]));
    state.queue = state.queue.map((item) => fresh.get(item.image_id) || item);
    // Untouched suggestions follow the new round; tags the annotator toggled stay.
    for (const [imageId, draft] of state.drafts) {
      if (untouched(draft) && fresh.has(imageId)) state.drafts.delete(imageId);
    }
    render();
  } catch (error) {
    /* the old reasons stay; nothing is lost */
  }
}

let progressTimer = null;
function refreshProgress() {
  clearTimeout(progressTimer);
  progressTimer = setTimeout(async () => {
    try {
      const stats = await api("GET", `/projects/${projectId}/stats`);
      const counts = stats.counts;
      $("progress-labelled").textContent = `${counts.labelled} of ${counts.images} labelled`;
      $("progress-round").textContent = `${stats.labels_until_next_round} labels to the next round`;
      const active = stats.active_round;
      const roundNow = active ? active.number : 0;
      if (roundNow !== knownRound) {
        knownRound = roundNow;
        refreshHeldItems(); // a new round: the images in hand have new predictions
      }
      if (!active) {
        $("progress-accuracy").textContent = "no trained round yet";
      } else if (multiLabel) {
        $("progress-accuracy").textContent = typeof active.micro_f1 === "number"
          ? `round ${active.number}: micro-F1 ${(active.micro_f1 * 100).toFixed(1)} %`
          : `round ${active.number} trained; F1 once each tag has 2 images with and 2 without`;
      } else if (typeof active.accuracy === "number") {
        $("progress-accuracy").textContent =
          `round ${active.number}: ${(active.accuracy * 100).toFixed(1)} % accurate`;
      } else {
        $("progress-accuracy").textContent =
          `round ${active.number} trained; accuracy shows once each class has 2 labels`;
      }
    } catch (error) {
      /* progress is informative only; the next refresh will try again */
    }
  }, 300);
}

document.addEventListener("keydown", (event) => {
  if (event.altKey || event.ctrlKey || event.metaKey) return;
  if (event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement) return;
  const key = event.key.toLowerCase();
  const overlay = $("keys-overlay");
  if (event.key === "?" || (event.key === "Escape" && !overlay.hidden)) {
    overlay.hidden = !overlay.hidden;
  } else if (!overlay.hidden) {
    return; // the list of keys is open: no key labels behind it
  } else if (keyToLabel.has(key)) {
    if (multiLabel) toggleTag(keyToLabel.get(key));
    else label(keyToLabel.get(key));
  } else if (event.key === "Enter") {
    if (multiLabel) {
      submitTags();
    } else {
      const item = current();
      if (item && item.prediction) label(item.prediction.label);
    }
  } else if (key === "s") {
    skipCurrent();
  } else if (key === "z" || event.key === "Backspace") {
    undoLast();
  } else if (event.key === "ArrowLeft") {
    move(-1);
  } else if (event.key === "ArrowRight") {
    move(1);
  } else {
    return;
  }
  event.preventDefault();
});

for (const button of document.querySelectorAll(".class-button")) {
  button.addEventListener("click", () => (multiLabel ? toggleTag : label)(button.dataset.label));
}
$("keys-overlay").addEventListener("click", () => { $("keys-overlay").hidden = true; });

window.addEventListener("beforeunload", (event) => {
  if (state.pending) event.preventDefault(); // labels still in flight
});

setInterval(refreshProgress, 10000);
updateSaveState();
refreshProgress();
refill();
