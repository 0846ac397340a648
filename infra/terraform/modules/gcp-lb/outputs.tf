# streamkit: outputs of the GCP load balancer module, including what the app must be configured with.
# Proven by: tests/static/test_terraform.py::test_budget_invariants_hold[modules/gcp-lb]

output "ip_address" {
  description = "Global IP address of the load balancer (point your DNS record at it)."
  value       = google_compute_global_address.this.address
}

output "backend_service_id" {
  description = "ID of the backend service (attach Cloud Armor policies or IAP to it)."
  value       = google_compute_backend_service.app.id
}

output "app_keepalive_seconds" {
  description = "The smallest keep-alive the app must use (its KEEPALIVE): longer than the GFE's fixed 600 s backend keep-alive. The app's own default is shorter: set KEEPALIVE from app_environment."
  value       = local.app_keepalive_seconds
}

output "app_environment" {
  description = "Environment variables for the app that match this load balancer's timeout budget."
  value = {
    KEEPALIVE          = local.app_keepalive_seconds
    PING_INTERVAL      = var.ping_interval_seconds
    MAX_STREAM_SECONDS = var.max_stream_seconds
    DRAIN_SECONDS      = var.drain_seconds
  }
}
