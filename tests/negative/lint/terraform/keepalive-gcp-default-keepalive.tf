# Negative control, never shipped: the app's default keep-alive behind a Google Front End, whose
# backend keep-alive is a fixed 600 s. Caught by
# tests/lint/test_negative_controls.py::test_lint_catches_negative_control (rule keepalive only).
resource "google_compute_backend_service" "llm" {
  name        = "llm"
  protocol    = "HTTP"
  timeout_sec = 3600
}

output "app_keepalive_seconds" {
  value = 75
}
