# Negative control, never shipped: connection draining 0 cuts open streams at once when a backend
# leaves. Caught by tests/lint/test_negative_controls.py::test_lint_catches_negative_control (rule drain only).
resource "google_compute_backend_service" "llm" {
  name                            = "llm"
  protocol                        = "HTTP"
  timeout_sec                     = 3600
  connection_draining_timeout_sec = 0
}

output "app_keepalive_seconds" {
  value = 620
}
