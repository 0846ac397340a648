# streamkit example (GCP): Terraform and provider versions.
# Proven by: tests/static/test_terraform.py::test_terraform_validate

terraform {
  required_version = ">= 1.9"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5.0, < 8.0"
    }
  }
}

provider "google" {
  project = var.project
}
