// The one fetch helper every page module uses to talk to /api/v1.
// Errors become exceptions carrying the server's sentence (and the HTTP status).

export function apiClient(csrfToken) {
  return async function api(method, path, body) {
    const response = await fetch(`/api/v1${path}`, {
      method,
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(data.detail || data.error || `The server answered ${response.status}.`);
      error.status = response.status;
      throw error;
    }
    return data;
  };
}
