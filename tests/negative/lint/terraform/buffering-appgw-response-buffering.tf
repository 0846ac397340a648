# Negative control, never shipped: Application Gateway v2 buffers responses by default, so tokens
# arrive in one piece at the end. Caught by
# tests/lint/test_negative_controls.py::test_lint_catches_negative_control (rule buffering only).
resource "azurerm_application_gateway" "llm" {
  name = "llm"

  backend_http_settings {
    name                  = "app"
    port                  = 8000
    protocol              = "Http"
    cookie_based_affinity = "Disabled"
    request_timeout       = 60
    connection_draining {
      enabled           = true
      drain_timeout_sec = 300
    }
  }
}

output "app_keepalive_seconds" {
  value = 75
}
