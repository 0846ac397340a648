# streamkit example (Azure): Terraform and provider versions.
# Proven by: tests/static/test_terraform.py::test_terraform_validate

terraform {
  required_version = ">= 1.9"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = ">= 3.90, < 5.0"
    }
  }
}

provider "azurerm" {
  features {}
}
