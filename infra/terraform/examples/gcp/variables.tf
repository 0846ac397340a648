# streamkit example (GCP): what you fill in (terraform.tfvars or -var).
# Proven by: tests/static/test_terraform.py::test_terraform_validate

variable "project" {
  description = "GCP project ID."
  type        = string
}

variable "domain" {
  description = "Hostname of the streaming API; its DNS record must point at the ip_address output for the managed certificate to become active."
  type        = string
}

variable "backend_groups" {
  description = "Self links of the instance groups or network endpoint groups that run the app."
  type        = list(string)
}
