// /api/docs: starts the vendored Swagger UI (static/vendor/swagger-ui) on our OpenAPI
// document. It lives in a file, not inline, because the CSP runs our own files only.
const root = document.getElementById("api-reference");
const csrfToken = root.dataset.csrfToken;
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

// "Try it out" with the browser session: the API refuses a state-changing request that
// authenticates by session unless it carries the page's CSRF token (a bearer token entered
// under "Authorize" needs none, and the header does no harm then).
function withCsrfToken(request) {
  if (csrfToken && !SAFE_METHODS.has((request.method || "GET").toUpperCase())) {
    request.headers["X-CSRFToken"] = csrfToken;
  }
  return request;
}

window.SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  domNode: root,
  deepLinking: true,
  // Only the standalone layout (not used here) shows the badge it would fetch from
  // validator.swagger.io; null keeps it off, as nothing may load from another site.
  validatorUrl: null,
  requestInterceptor: withCsrfToken,
  onComplete: () => { root.dataset.loaded = "true"; },
});
