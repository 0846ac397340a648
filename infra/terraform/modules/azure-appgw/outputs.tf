# streamkit: outputs of the Azure Application Gateway module, including what the app must be
# configured with.
# Proven by: tests/static/test_terraform.py::test_budget_invariants_hold[modules/azure-appgw]

output "gateway_id" {
  description = "ID of the application gateway."
  value       = azurerm_application_gateway.this.id
}

output "public_ip_address" {
  description = "Public IP address of the gateway (point your DNS record at it)."
  value       = azurerm_public_ip.this.ip_address
}

output "app_keepalive_seconds" {
  description = "The smallest keep-alive the app must use (its KEEPALIVE): longer than the gateway's request timeout (Microsoft documents no backend keep-alive time; see main.tf)."
  value       = local.app_keepalive_seconds
}

output "app_environment" {
  description = "Environment variables for the app that match this gateway's timeout budget."
  value = {
    KEEPALIVE          = local.app_keepalive_seconds
    PING_INTERVAL      = var.ping_interval_seconds
    MAX_STREAM_SECONDS = var.max_stream_seconds
    DRAIN_SECONDS      = var.drain_seconds
  }
}
