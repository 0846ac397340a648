# Negative control, never shipped: a GCP backend service without timeout_sec keeps the default 30 s,
# a TOTAL response time, so every stream is cut at 30 s. Caught by
# tests/lint/test_negative_controls.py::test_lint_catches_negative_control (rule total-timeout only).
resource "google_compute_backend_service" "llm" {
  name     = "llm"
  protocol = "HTTP"
}

output "app_keepalive_seconds" {
  value = 620
}
