# Negative control, never shipped: a GCP backend service without timeout_sec keeps the default 30 s,
# a TOTAL response time, so every stream is cut at 30 s. Caught by
# tests/static/test_terraform.py::test_negative_configs_are_caught (rule total-timeout).
resource "google_compute_backend_service" "llm" {
  name     = "llm"
  protocol = "HTTP"
}

output "app_keepalive_seconds" {
  value = 620
}
