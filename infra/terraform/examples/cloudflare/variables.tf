# streamkit example (Cloudflare): inputs; the validation block checks the read timeout against the
# app's heartbeat.
# Proven by: tests/static/test_terraform.py::test_validation_blocks

variable "zone_id" {
  description = "ID of the proxied (orange-cloud) zone that serves the streaming API."
  type        = string
}

variable "sse_paths_expression" {
  description = "Rules-language expression that matches every streaming path of your app (the reference app's three streaming endpoints by default)."
  type        = string
  default     = "(http.request.uri.path in {\"/v1/chat/stream\" \"/v1/chat/completions\" \"/v1/responses\"})"
}

variable "ping_interval_seconds" {
  description = "The app's heartbeat interval (PING_INTERVAL)."
  type        = number
  default     = 15

  validation {
    condition     = var.ping_interval_seconds > 0
    error_message = "ping_interval_seconds must be positive."
  }
}

variable "proxy_read_timeout_seconds" {
  description = "Longest wait between two reads from the origin before Cloudflare answers 524 (an idle timer, not a total cap). Only Enterprise zones can change it (up to 6000); elsewhere keep the default. Cloudflare default: `100`."
  type        = number
  default     = 100

  validation {
    condition     = var.proxy_read_timeout_seconds > 2 * var.ping_interval_seconds && var.proxy_read_timeout_seconds <= 6000
    error_message = "proxy_read_timeout_seconds must be more than 2 x ping_interval_seconds (one late heartbeat must not end in a 524) and at most 6000."
  }
}
