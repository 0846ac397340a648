# Negative control, never shipped: a 25 s proxy read timeout is less than two ping intervals.
# Caught by tests/lint/test_negative_controls.py::test_lint_catches_negative_control (rule idle-timeout only).
resource "cloudflare_ruleset" "sse" {
  zone_id = "0123456789abcdef0123456789abcdef"
  name    = "sse"
  kind    = "zone"
  phase   = "http_request_cache_settings"

  rules = [{
    expression = "(http.request.uri.path in {\"/v1/chat/stream\" \"/v1/chat/completions\" \"/v1/responses\"})"
    action     = "set_cache_settings"
    action_parameters = {
      cache = false
    }
  }]
}

resource "cloudflare_zone_setting" "proxy_read_timeout" {
  zone_id    = "0123456789abcdef0123456789abcdef"
  setting_id = "proxy_read_timeout"
  value      = 25
}
