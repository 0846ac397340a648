# Negative control, never shipped: without connection draining a removed backend loses its open
# streams at once. Caught by
# tests/lint/test_negative_controls.py::test_lint_catches_negative_control (rule drain only).
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
    request_timeout       = 60
  }
}

output "app_keepalive_seconds" {
  value = 75
}
