# streamkit: GCP global external Application Load Balancer in front of the SSE app
# (hop: client -> Google Front End -> app).
# Replace nothing here: pass your backend groups and certificates as inputs (see README.md).
# Every setting below that differs from the GCP default says why.
# Proven by: tests/static/test_terraform.py::test_budget_invariants_hold[modules/gcp-lb]
#            tests/static/test_terraform.py::test_checkov_offline
# The streaming contract itself (pings, no buffering) is proven through local proxies in tests/e2e/;
# nothing here runs against GCP in the test suite.

locals {
  # Google Front Ends keep idle connections to backends open for a FIXED 600 s (not configurable),
  # and Google asks for a backend keep-alive longer than that; otherwise the GFE may reuse a
  # connection the app is closing and answer 502.
  # https://cloud.google.com/load-balancing/docs/https#timeouts_and_retries
  gfe_backend_keepalive_seconds = 600
  keepalive_margin_seconds      = 15
  app_keepalive_seconds         = local.gfe_backend_keepalive_seconds + local.keepalive_margin_seconds
}

################################################################################
# Backend service (GFE -> app)
################################################################################

resource "google_compute_health_check" "app" {
  name = "${var.name}-ready"

  http_health_check {
    port = var.health_check_port
    # The app's readiness endpoint: 503 while draining, so no new stream lands on a leaving backend.
    # Default: /
    # https://cloud.google.com/load-balancing/docs/health-check-concepts
    request_path = var.health_check_path
  }
}

resource "google_compute_backend_service" "app" {
  name                  = "${var.name}-app"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  port_name             = var.port_name
  health_checks         = [google_compute_health_check.app.id]

  # HTTP/1.1 to the app: uvicorn has no HTTP/2 or h2c. Clients may still use HTTP/2 or HTTP/3.
  # Explicit on purpose: same as the GCP default; HTTP2 or H2C here would break every request.
  # Default: HTTP
  # https://cloud.google.com/load-balancing/docs/backend-service#protocol-to-backends
  protocol = var.backend_protocol

  # For HTTP(S) backends this is the time allowed for the WHOLE response, not an idle timer:
  # with the default every stream is cut at 30 s, pings or not. It must cover the longest stream.
  # Default: 30
  # https://cloud.google.com/load-balancing/docs/https#timeout-bes
  timeout_sec = var.timeout_sec

  # A removed backend keeps its open streams this long. The app ends its streams with a terminal
  # event within drain_seconds of SIGTERM, so this must be at least drain_seconds.
  # Explicit on purpose: same as the provider default, kept so the budget check sees it.
  # Default: 300
  # https://cloud.google.com/load-balancing/docs/enabling-connection-draining
  connection_draining_timeout_sec = var.connection_draining_timeout_sec

  # Request logs (1 in 1): the place to see streams that end with status 0 or a backend timeout.
  # Default: disabled
  # https://cloud.google.com/load-balancing/docs/https/https-logging-monitoring
  log_config {
    enable      = true
    sample_rate = 1.0
  }

  dynamic "backend" {
    for_each = toset(var.backend_groups)
    content {
      group = backend.value
    }
  }
}

################################################################################
# Frontend: HTTPS, plus a redirect from HTTP
################################################################################

resource "google_compute_url_map" "https" {
  name            = "${var.name}-https"
  default_service = google_compute_backend_service.app.id
}

resource "google_compute_target_https_proxy" "this" {
  name             = "${var.name}-https"
  url_map          = google_compute_url_map.https.id
  ssl_certificates = var.ssl_certificates
}

resource "google_compute_global_address" "this" {
  name = "${var.name}-ip"
}

resource "google_compute_global_forwarding_rule" "https" {
  name                  = "${var.name}-https"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.this.address
  port_range            = "443"
  target                = google_compute_target_https_proxy.this.id
  labels                = var.labels
}

resource "google_compute_url_map" "http_redirect" {
  name = "${var.name}-http-redirect"

  default_url_redirect {
    https_redirect         = true
    redirect_response_code = "MOVED_PERMANENTLY_DEFAULT"
    strip_query            = false
  }
}

resource "google_compute_target_http_proxy" "redirect" {
  name    = "${var.name}-http-redirect"
  url_map = google_compute_url_map.http_redirect.id
}

resource "google_compute_global_forwarding_rule" "http_redirect" {
  name                  = "${var.name}-http-redirect"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.this.address
  port_range            = "80"
  target                = google_compute_target_http_proxy.redirect.id
  labels                = var.labels
}
