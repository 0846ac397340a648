# Negative control, never shipped: an H2C backend cannot talk to uvicorn (HTTP/1.1 only). Caught by
# tests/lint/test_negative_controls.py::test_lint_catches_negative_control (rule http1 only).
resource "google_compute_backend_service" "llm" {
  name        = "llm"
  protocol    = "H2C"
  timeout_sec = 3600
}

output "app_keepalive_seconds" {
  value = 620
}
