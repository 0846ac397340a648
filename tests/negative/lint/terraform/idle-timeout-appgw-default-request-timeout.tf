# Negative control, never shipped: the provider default request_timeout of 30 s is only two ping
# intervals; one late heartbeat ends the stream. Caught by
# tests/lint/test_negative_controls.py::test_lint_catches_negative_control (rule idle-timeout only).
resource "azurerm_application_gateway" "llm" {
  name = "llm"
  global {
    request_buffering_enabled  = true
    response_buffering_enabled = false
  }

  backend_http_settings {
    name                  = "app"
    port                  = 8000
    protocol              = "Http"
    cookie_based_affinity = "Disabled"
    connection_draining {
      enabled           = true
      drain_timeout_sec = 300
    }
  }
}

output "app_keepalive_seconds" {
  value = 75
}
