# streamkit example (Azure): an Application Gateway v2 in front of the SSE app.
# Copy infra/terraform/modules/azure-appgw into your repository as modules/streamkit-azure-appgw and
# this folder's files next to it; fill in variables.tf; then `terraform init && terraform apply`.
# Then set the app's environment from the `app_environment` output.
# Proven by: tests/static/test_terraform.py::test_examples_use_copyable_sources
#            tests/static/test_terraform.py::test_terraform_validate

module "llm_gateway" {
  source = "./modules/streamkit-azure-appgw"

  name                      = "llm-sse"
  resource_group_name       = var.resource_group_name
  location                  = var.location
  subnet_id                 = var.gateway_subnet_id
  backend_addresses         = var.app_addresses
  ssl_certificate_secret_id = var.certificate_secret_id
  identity_id               = var.gateway_identity_id

  # The app's timeout budget: keep these equal to the app's PING_INTERVAL, MAX_STREAM_SECONDS and
  # DRAIN_SECONDS (the values here are the app's defaults).
  ping_interval_seconds = 15
  max_stream_seconds    = 3600
  drain_seconds         = 25
}

output "public_ip_address" {
  description = "Point your hostname's A record here."
  value       = module.llm_gateway.public_ip_address
}

output "app_environment" {
  description = "Set these on the app."
  value       = module.llm_gateway.app_environment
}
