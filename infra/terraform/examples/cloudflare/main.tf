# streamkit example (Cloudflare): the CDN hop in front of your load balancer or proxy
# (hop: browser -> Cloudflare edge -> origin). The rule set, and why:
#   1. Never cache the streaming paths (rule below). The app already sends
#      `Cache-Control: no-cache, no-transform`, and Cloudflare does not cache these paths by default;
#      the rule keeps a later "cache everything" rule from catching them.
#   2. Proxy read timeout: 100 s BETWEEN two reads from the origin (not a total cap). The app's
#      heartbeat every PING_INTERVAL (15 s) keeps every gap far below it; a silent origin gets 524.
#   3. No compression work: Cloudflare's default compressed types do not include text/event-stream.
#   4. Response buffering is off by default (an Enterprise-only setting); leave it off.
#   5. Avoid Cloudflare Tunnel for SSE unless you verified it streams (users report buffering).
# Replace: zone_id (variables.tf). If the zone already has Cache Rules, add this rule to that
# ruleset instead: a zone has one ruleset per phase.
# Proven by: tests/static/test_terraform.py::test_budget_invariants_hold[examples/cloudflare]
#            tests/static/test_terraform.py::test_validation_blocks

resource "cloudflare_ruleset" "sse_cache_bypass" {
  zone_id     = var.zone_id
  name        = "streamkit: never cache SSE streams"
  description = "Streaming responses are unique per request; caching them would replay or stall streams."
  kind        = "zone"
  phase       = "http_request_cache_settings"

  rules = [{
    ref         = "streamkit_sse_bypass_cache"
    description = "Bypass the cache on the streaming paths."
    expression  = var.sse_paths_expression
    action      = "set_cache_settings"
    # Bypass the cache for matching requests.
    # Default: eligible for cache when a cache rule or the file extension says so
    # https://developers.cloudflare.com/cache/how-to/cache-rules/settings/#eligible-for-cache
    action_parameters = {
      cache = false
    }
    enabled = true
  }]
}

# Only created when you change the timeout (Enterprise zones); with the default nothing is written.
resource "cloudflare_zone_setting" "proxy_read_timeout" {
  count      = var.proxy_read_timeout_seconds == 100 ? 0 : 1
  zone_id    = var.zone_id
  setting_id = "proxy_read_timeout"
  # Longest wait between two reads from the origin, then 524. Heartbeats keep gaps at ping interval.
  # Default: 100
  # https://developers.cloudflare.com/support/troubleshooting/http-status-codes/cloudflare-5xx-errors/error-524/
  value = var.proxy_read_timeout_seconds
}
