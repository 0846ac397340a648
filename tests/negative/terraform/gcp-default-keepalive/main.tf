# Negative control, never shipped: the app's default keep-alive behind a Google Front End, whose
# backend keep-alive is a fixed 600 s. Caught by
# tests/static/test_terraform.py::test_negative_configs_are_caught (rule keepalive).
resource "google_compute_backend_service" "llm" {
  name        = "llm"
  protocol    = "HTTP"
  timeout_sec = 3600
}

output "app_keepalive_seconds" {
  value = 75
}
