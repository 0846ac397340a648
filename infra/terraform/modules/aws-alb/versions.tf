# streamkit: AWS Application Load Balancer for SSE token streaming (provider and Terraform versions).
# Proven by: tests/static/test_terraform.py::test_terraform_validate

terraform {
  # 1.9 is the first release whose validation blocks may refer to other variables
  # (idle_timeout_seconds is checked against ping_interval_seconds).
  # https://developer.hashicorp.com/terraform/language/values/variables#custom-validation-rules
  required_version = ">= 1.9"

  required_providers {
    # client_keep_alive on aws_lb needs a 5.x release from mid-2024 on; tested with 5.100.0.
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 7.0"
    }
  }
}
