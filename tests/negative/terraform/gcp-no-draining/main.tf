# Negative control, never shipped: connection draining 0 cuts open streams at once when a backend
# leaves. Caught by tests/static/test_terraform.py::test_negative_configs_are_caught (rule drain).
resource "google_compute_backend_service" "llm" {
  name                            = "llm"
  protocol                        = "HTTP"
  timeout_sec                     = 3600
  connection_draining_timeout_sec = 0
}

output "app_keepalive_seconds" {
  value = 620
}
