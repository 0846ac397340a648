# streamkit example (Cloudflare): Terraform and provider versions (provider 5.x resource names).
# Proven by: tests/static/test_terraform.py::test_terraform_validate

terraform {
  # 1.9 is the first release whose validation blocks may refer to other variables.
  required_version = ">= 1.9"

  required_providers {
    cloudflare = {
      source  = "cloudflare/cloudflare"
      version = ">= 5.0, < 6.0"
    }
  }
}

# Reads the API token from CLOUDFLARE_API_TOKEN (Zone: Cache Rules Edit, Zone Settings Edit).
provider "cloudflare" {}
