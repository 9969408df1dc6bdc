// Starts Swagger UI on refreshd's own OpenAPI document. A file, not an inline script, so the
// page's Content-Security-Policy can forbid inline scripts.
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
