# Negative control for `streamkit lint` (never shipped): violates rule SK1 buffering ONLY.
# no global block: Application Gateway buffers responses by default.
# Proven by: tests/lint/test_negative_controls.py::test_lint_catches_negative_control
resource "azurerm_application_gateway" "llm" {
  name = "llm"
  backend_http_settings {
    name                  = "app"
    port                  = 8000
    protocol              = "Http"
    request_timeout       = 60
    cookie_based_affinity = "Disabled"
    connection_draining {
      enabled           = true
      drain_timeout_sec = 30
    }
  }
}
