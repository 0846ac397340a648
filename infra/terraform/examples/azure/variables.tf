# streamkit example (Azure): what you fill in (terraform.tfvars or -var).
# Proven by: tests/static/test_terraform.py::test_terraform_validate

variable "resource_group_name" {
  description = "Existing resource group for the gateway."
  type        = string
}

variable "location" {
  description = "Azure region, for example westeurope."
  type        = string
}

variable "gateway_subnet_id" {
  description = "Dedicated subnet for the application gateway."
  type        = string
}

variable "app_addresses" {
  description = "FQDNs of the app instances (the backend pool's fqdns)."
  type        = list(string)
}

variable "certificate_secret_id" {
  description = "Key Vault secret ID of the TLS certificate."
  type        = string
}

variable "gateway_identity_id" {
  description = "User-assigned identity that may read the certificate secret."
  type        = string
}
