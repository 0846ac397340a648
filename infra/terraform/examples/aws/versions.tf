# streamkit example (AWS): Terraform and provider versions. Tested with hashicorp/aws 5.100.0.
# Proven by: tests/static/test_terraform.py::test_terraform_validate

terraform {
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 7.0"
    }
  }
}

provider "aws" {
  region = var.region
}
