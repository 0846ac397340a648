# Negative control, never shipped: without connection draining a removed backend loses its open
# streams at once. Caught by
# tests/static/test_terraform.py::test_negative_configs_are_caught (rule drain).
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
