# streamkit: inputs of the Azure Application Gateway module. The validation blocks enforce the SSE
# timeout budget. Defaults of ping_interval_seconds, max_stream_seconds and drain_seconds equal the
# reference app's settings (app/settings.py); change them together with the app's PING_INTERVAL,
# MAX_STREAM_SECONDS and DRAIN_SECONDS.
# Proven by: tests/static/test_terraform.py::test_validation_blocks
#            tests/static/test_terraform.py::test_module_defaults_match_app_settings

################################################################################
# Where the gateway lives
################################################################################

variable "name" {
  description = "Name of the application gateway; other resources get it as a prefix."
  type        = string
}

variable "resource_group_name" {
  description = "Resource group of the gateway and its public IP."
  type        = string
}

variable "location" {
  description = "Azure region."
  type        = string
}

variable "subnet_id" {
  description = "Dedicated subnet of the application gateway (nothing else may live in it)."
  type        = string
}

variable "backend_addresses" {
  description = "FQDNs of the app instances (the backend pool's fqdns)."
  type        = list(string)
}

variable "ssl_certificate_secret_id" {
  description = "Key Vault secret ID of the TLS certificate for the HTTPS listener."
  type        = string
}

variable "identity_id" {
  description = "User-assigned managed identity that may read ssl_certificate_secret_id."
  type        = string
}

variable "sku_name" {
  description = "`Standard_v2` or `WAF_v2` (v1 SKUs have no response-buffering switch)."
  type        = string
  default     = "Standard_v2"

  validation {
    condition     = contains(["Standard_v2", "WAF_v2"], var.sku_name)
    error_message = "sku_name must be \"Standard_v2\" or \"WAF_v2\"; only v2 gateways can turn response buffering off."
  }
}

variable "min_capacity" {
  description = "Autoscaling lower bound (instances)."
  type        = number
  default     = 1
}

variable "max_capacity" {
  description = "Autoscaling upper bound (instances)."
  type        = number
  default     = 10
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

################################################################################
# The app behind it
################################################################################

variable "backend_port" {
  description = "Port the app listens on (the app's PORT)."
  type        = number
  default     = 8000

  validation {
    condition     = var.backend_port >= 1 && var.backend_port <= 65535
    error_message = "backend_port must be between 1 and 65535."
  }
}

variable "backend_protocol" {
  description = "Protocol from the gateway to the app: `Http` or `Https` (the gateway speaks HTTP/1.1 to backends)."
  type        = string
  default     = "Http"

  validation {
    condition     = contains(["Http", "Https"], var.backend_protocol)
    error_message = "backend_protocol must be \"Http\" or \"Https\"."
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
  description = "The app's heartbeat interval (PING_INTERVAL): a comment line is sent this often on every open stream."
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

variable "request_timeout_seconds" {
  description = "Backend settings request timeout (1-86400). Microsoft's SSE guide asks for more than the idle time between events; this module asks for more than two ping intervals. Provider default: `30`."
  type        = number
  default     = 60

  validation {
    condition     = var.request_timeout_seconds > 2 * var.ping_interval_seconds && var.request_timeout_seconds <= 86400
    error_message = "request_timeout_seconds must be more than 2 x ping_interval_seconds (one late heartbeat must not cut a stream) and at most 86400."
  }
}

variable "drain_timeout_seconds" {
  description = "Connection draining: how long a removed backend keeps its open streams (1-3600). At least drain_seconds, so the app ends every stream with its own terminal event first. Off by default in Azure; the module uses 300 like the AWS and GCP modules."
  type        = number
  default     = 300

  validation {
    condition     = var.drain_timeout_seconds >= var.drain_seconds && var.drain_timeout_seconds >= 1 && var.drain_timeout_seconds <= 3600
    error_message = "drain_timeout_seconds must be at least drain_seconds and between 1 and 3600."
  }
}
