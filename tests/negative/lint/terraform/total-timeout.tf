# Negative control for `streamkit lint` (never shipped): violates rule SK4 total-timeout ONLY.
# no timeout_sec: the backend service cuts every response at 30 s.
# Proven by: tests/lint/test_negative_controls.py::test_lint_catches_negative_control
resource "google_compute_backend_service" "llm" {
  name     = "llm"
  protocol = "HTTP"
}

# The app runs with KEEPALIVE above the GFE's fixed 600 s backend keep-alive.
output "app_keepalive_seconds" {
  value = 620
}
