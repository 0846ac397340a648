# Negative control, never shipped: a "cache everything" rule also caches the streaming paths.
# Caught by tests/lint/test_negative_controls.py::test_lint_catches_negative_control (rule cache only).
resource "cloudflare_ruleset" "cache" {
  zone_id = "0123456789abcdef0123456789abcdef"
  name    = "cache everything"
  kind    = "zone"
  phase   = "http_request_cache_settings"

  rules = [{
    expression = "true"
    action     = "set_cache_settings"
    action_parameters = {
      cache = true
    }
  }]
}
