# streamkit: Azure Application Gateway v2 for SSE token streaming (versions).
# Proven by: tests/static/test_terraform.py::test_terraform_validate

terraform {
  # 1.9 is the first release whose validation blocks may refer to other variables
  # (request_timeout_seconds is checked against ping_interval_seconds).
  # https://developer.hashicorp.com/terraform/language/values/variables#custom-validation-rules
  required_version = ">= 1.9"

  required_providers {
    # The `global` block (response_buffering_enabled) needs azurerm 3.x from 2023 on.
    azurerm = {
      source  = "hashicorp/azurerm"
      version = ">= 3.90, < 5.0"
    }
  }
}
