// The export page: while a model export job runs, show its progress; reload when it ends.
// Everything else on the page is plain forms and links, which work without this script.
import { apiClient } from "./api.js";

const POLL_MS = 1000;
const box = document.getElementById("model-job");

async function poll(api) {
  try {
    const job = await api("GET", `/jobs/${box.dataset.jobId}`);
    const bar = document.getElementById("model-job-progress");
    if (job.progress) bar.value = job.progress;
    if (job.message) document.getElementById("model-job-text").textContent = job.message;
    if (job.status !== "queued" && job.status !== "running") {
      window.location.reload(); // the page then offers the file, or says why it failed
      return;
    }
  } catch (error) {
    document.getElementById("model-job-text").textContent =
      `Could not read the job's progress (${error.message}); reload the page to try again.`;
    return;
  }
  setTimeout(() => poll(api), POLL_MS);
}

if (box) poll(apiClient(box.dataset.csrf));
