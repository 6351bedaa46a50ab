// Drag-and-drop upload with progress; the form still works without this script.

const zone = document.getElementById("dropzone");

function show(report) {
  const box = document.getElementById("upload-report");
  const summary = document.createElement("p");
  summary.textContent = report.summary || report.detail || "Upload finished.";
  const list = document.createElement("ul");
  for (const rejected of report.rejected || []) {
    const item = document.createElement("li");
    item.className = "rejected";
    item.textContent = `${rejected.name}: ${rejected.reason}`;
    list.append(item);
  }
  box.replaceChildren(summary, list);
}

function send(files) {
  const data = new FormData(zone);
  data.delete("files");
  for (const file of files) data.append("files", file, file.name);
  const progress = document.getElementById("upload-progress");
  const bar = progress.querySelector("progress");
  const label = progress.querySelector("span");
  progress.hidden = false;
  const request = new XMLHttpRequest();
  request.open("POST", zone.action);
  request.setRequestHeader("Accept", "application/json");
  request.setRequestHeader("X-CSRFToken", zone.dataset.csrf);
  request.upload.addEventListener("progress", (event) => {
    if (event.lengthComputable) {
      bar.value = Math.round((event.loaded / event.total) * 100);
      label.textContent = bar.value < 100 ? `uploading ${bar.value} %` : "checking and storing images…";
    }
  });
  request.addEventListener("load", () => {
    progress.hidden = true;
    let report;
    try {
      report = JSON.parse(request.responseText);
    } catch {
      report = { detail: `The server answered ${request.status}.` };
    }
    show(report);
  });
  request.addEventListener("error", () => {
    progress.hidden = true;
    show({ detail: "The upload failed (connection lost); nothing was half-imported — try again." });
  });
  request.send(data);
}

if (zone) {
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("over");
    });
  }
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer.files.length) send(event.dataTransfer.files);
  });
  zone.addEventListener("submit", (event) => {
    const input = zone.querySelector("input[type=file]");
    if (input.files.length) {
      event.preventDefault();
      send(input.files);
    }
  });
}
