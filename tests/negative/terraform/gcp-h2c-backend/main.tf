# Negative control, never shipped: an H2C backend cannot talk to uvicorn (HTTP/1.1 only). Caught by
# tests/static/test_terraform.py::test_negative_configs_are_caught (rule http1).
resource "google_compute_backend_service" "llm" {
  name        = "llm"
  protocol    = "H2C"
  timeout_sec = 3600
}

output "app_keepalive_seconds" {
  value = 620
}
