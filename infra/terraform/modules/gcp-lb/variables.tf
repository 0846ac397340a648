# streamkit: inputs of the GCP load balancer module. The validation blocks enforce the SSE timeout
# budget. Defaults of ping_interval_seconds, max_stream_seconds and drain_seconds equal the
# reference app's settings (app/settings.py); change them together with the app's PING_INTERVAL,
# MAX_STREAM_SECONDS and DRAIN_SECONDS.
# Proven by: tests/static/test_terraform.py::test_validation_blocks
#            tests/static/test_terraform.py::test_module_defaults_match_app_settings

################################################################################
# Where the load balancer lives
################################################################################

variable "name" {
  description = "Name prefix of every resource (lower case letters, digits and dashes)."
  type        = string
}

variable "backend_groups" {
  description = "Self links of the instance groups or network endpoint groups that run the app."
  type        = list(string)
}

variable "ssl_certificates" {
  description = "Self links of the SSL certificates of the HTTPS proxy (for example google_compute_managed_ssl_certificate)."
  type        = list(string)
}

variable "labels" {
  description = "Labels for the forwarding rules."
  type        = map(string)
  default     = {}
}

################################################################################
# The app behind it
################################################################################

variable "backend_protocol" {
  description = "Protocol from the load balancer to the app: `HTTP` or `HTTPS` (both HTTP/1.1). GCP default: `HTTP`."
  type        = string
  default     = "HTTP"

  validation {
    condition     = contains(["HTTP", "HTTPS"], var.backend_protocol)
    error_message = "backend_protocol must be \"HTTP\" or \"HTTPS\"; uvicorn speaks HTTP/1.1 only, so HTTP2 and H2C backends cannot reach it."
  }
}

variable "port_name" {
  description = "Named port of the instance groups that serves the app. GCP default: `http`."
  type        = string
  default     = "http"
}

variable "health_check_port" {
  description = "Port the app listens on (the app's PORT), probed by the health check."
  type        = number
  default     = 8000

  validation {
    condition     = var.health_check_port >= 1 && var.health_check_port <= 65535
    error_message = "health_check_port must be between 1 and 65535."
  }
}

variable "health_check_path" {
  description = "Readiness path. The app's /readyz turns 503 while it drains, so no new stream lands on a leaving backend."
  type        = string
  default     = "/readyz"
}

################################################################################
# Timeout budget (see docs/timeouts.md)
################################################################################

variable "ping_interval_seconds" {
  description = "The app's heartbeat interval (PING_INTERVAL). Informational here: GCP has no idle timer on a response in flight, only the total timeout_sec."
  type        = number
  default     = 15

  validation {
    condition     = var.ping_interval_seconds > 0
    error_message = "ping_interval_seconds must be positive."
  }
}

variable "max_stream_seconds" {
  description = "Longest stream the app serves (MAX_STREAM_SECONDS)."
  type        = number
  default     = 3600

  validation {
    condition     = var.max_stream_seconds > 0
    error_message = "max_stream_seconds must be positive."
  }
}

variable "drain_seconds" {
  description = "How long the app lets open streams finish after SIGTERM (DRAIN_SECONDS)."
  type        = number
  default     = 25

  validation {
    condition     = var.drain_seconds >= 0
    error_message = "drain_seconds must not be negative."
  }
}

variable "timeout_sec" {
  description = "Backend service timeout. For HTTP(S) backends of an external Application Load Balancer it is the TOTAL time for the whole response, so it must cover max_stream_seconds (Google advises at most 86400). GCP default: `30`."
  type        = number
  default     = 3600

  validation {
    condition     = var.timeout_sec >= var.max_stream_seconds && var.timeout_sec <= 86400
    error_message = "timeout_sec must be at least max_stream_seconds (it caps the whole response, so a shorter value cuts every longer stream) and at most 86400."
  }
}

variable "connection_draining_timeout_sec" {
  description = "How long a removed backend keeps its open streams (0-3600). At least drain_seconds, so the app ends every stream with its own terminal event first. Provider default: `300`."
  type        = number
  default     = 300

  validation {
    condition     = var.connection_draining_timeout_sec >= var.drain_seconds && var.connection_draining_timeout_sec <= 3600
    error_message = "connection_draining_timeout_sec must be at least drain_seconds and at most 3600."
  }
}
