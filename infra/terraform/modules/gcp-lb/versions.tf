# streamkit: GCP global external Application Load Balancer for SSE token streaming (versions).
# Proven by: tests/static/test_terraform.py::test_terraform_validate

terraform {
  # 1.9 is the first release whose validation blocks may refer to other variables
  # (timeout_sec is checked against max_stream_seconds).
  # https://developer.hashicorp.com/terraform/language/values/variables#custom-validation-rules
  required_version = ">= 1.9"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5.0, < 8.0"
    }
  }
}
