# streamkit example (GCP): a global external Application Load Balancer in front of the SSE app.
# Copy infra/terraform/modules/gcp-lb into your repository as modules/streamkit-gcp-lb and this
# folder's files next to it; fill in variables.tf; then `terraform init && terraform apply`.
# Then set the app's environment from the `app_environment` output: behind GCP the app needs
# KEEPALIVE above the Google Front End's fixed 600 s.
# Proven by: tests/static/test_terraform.py::test_examples_use_copyable_sources
#            tests/static/test_terraform.py::test_terraform_validate

resource "google_compute_managed_ssl_certificate" "api" {
  name = "llm-sse-cert"

  managed {
    domains = [var.domain]
  }
}

module "llm_lb" {
  source = "./modules/streamkit-gcp-lb"

  name             = "llm-sse"
  backend_groups   = var.backend_groups
  ssl_certificates = [google_compute_managed_ssl_certificate.api.id]

  # The app's timeout budget: keep these equal to the app's PING_INTERVAL, MAX_STREAM_SECONDS and
  # DRAIN_SECONDS (the values here are the app's defaults). timeout_sec follows max_stream_seconds.
  ping_interval_seconds = 15
  max_stream_seconds    = 3600
  drain_seconds         = 25
  timeout_sec           = 3600
}

output "ip_address" {
  description = "Point your hostname's A record here."
  value       = module.llm_lb.ip_address
}

output "app_environment" {
  description = "Set these on the app (KEEPALIVE must exceed the GFE's fixed 600 s backend keep-alive)."
  value       = module.llm_lb.app_environment
}
