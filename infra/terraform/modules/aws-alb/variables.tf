# streamkit: inputs of the AWS ALB module. The validation blocks enforce the SSE timeout budget.
# Defaults of ping_interval_seconds, max_stream_seconds and drain_seconds equal the reference app's
# settings (app/settings.py); change them together with the app's PING_INTERVAL, MAX_STREAM_SECONDS
# and DRAIN_SECONDS.
# Proven by: tests/static/test_terraform.py::test_validation_blocks
#            tests/static/test_terraform.py::test_module_defaults_match_app_settings

################################################################################
# Where the load balancer lives
################################################################################

variable "name" {
  description = "Name of the load balancer and its target group (at most 32 characters; the target group name gets a `-app` suffix)."
  type        = string
}

variable "vpc_id" {
  description = "ID of the VPC that holds the app's targets."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the load balancer (at least two Availability Zones)."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the load balancer. They must allow 443 (and 80 for the redirect) in, and the app port out."
  type        = list(string)
}

variable "certificate_arn" {
  description = "ACM certificate for the HTTPS listener."
  type        = string
}

variable "internal" {
  description = "Whether the load balancer is internal. Default: `false`."
  type        = bool
  default     = false
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listener. Default of the AWS console: `ELBSecurityPolicy-TLS13-1-2-2021-06`."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "enable_deletion_protection" {
  description = "Refuse to delete the load balancer through the API. AWS default: `false`; this module turns it on."
  type        = bool
  default     = true
}

variable "access_logs_bucket" {
  description = "S3 bucket for access logs (empty: no access logs). The bucket policy must allow ELB log delivery."
  type        = string
  default     = ""
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

################################################################################
# The app behind it
################################################################################

variable "target_port" {
  description = "Port the app listens on (the app's PORT)."
  type        = number
  default     = 8000

  validation {
    condition     = var.target_port >= 1 && var.target_port <= 65535
    error_message = "target_port must be between 1 and 65535."
  }
}

variable "target_type" {
  description = "How targets register: `ip` (ECS awsvpc, EKS) or `instance` (EC2). AWS default: `instance`."
  type        = string
  default     = "ip"

  validation {
    condition     = contains(["ip", "instance"], var.target_type)
    error_message = "target_type must be \"ip\" or \"instance\"."
  }
}

variable "target_protocol" {
  description = "Protocol from the ALB to the app: `HTTP` or `HTTPS` (both HTTP/1.1; the target group's protocol_version is fixed to HTTP1)."
  type        = string
  default     = "HTTP"

  validation {
    condition     = contains(["HTTP", "HTTPS"], var.target_protocol)
    error_message = "target_protocol must be \"HTTP\" or \"HTTPS\"; uvicorn speaks HTTP/1.1 only, so HTTP2 and GRPC target groups cannot reach it."
  }
}

variable "health_check_path" {
  description = "Readiness path. The app's /readyz turns 503 while it drains, so the ALB stops sending new streams first."
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

variable "idle_timeout_seconds" {
  description = "ALB connection idle timeout, for client and target connections alike (1-4000). Must exceed two ping intervals, and the app's keep-alive must exceed it (see the app_keepalive_seconds output). AWS default: `60`."
  type        = number
  default     = 60

  validation {
    condition     = var.idle_timeout_seconds > 2 * var.ping_interval_seconds && var.idle_timeout_seconds <= 4000
    error_message = "idle_timeout_seconds must be more than 2 x ping_interval_seconds (one late heartbeat must not cut a stream) and at most 4000."
  }
}

variable "client_keep_alive_seconds" {
  description = "Longest lifetime of a client connection (60-604800). At least max_stream_seconds, so the ALB never has to end a connection that carries a stream. AWS default: `3600`."
  type        = number
  default     = 3600

  validation {
    condition     = var.client_keep_alive_seconds >= var.max_stream_seconds && var.client_keep_alive_seconds >= 60 && var.client_keep_alive_seconds <= 604800
    error_message = "client_keep_alive_seconds must be at least max_stream_seconds and between 60 and 604800."
  }
}

variable "deregistration_delay_seconds" {
  description = "How long a deregistering target keeps its open streams (0-3600). At least drain_seconds, so the app ends every stream with its own terminal event before the ALB cuts it. AWS default: `300`."
  type        = number
  default     = 300

  validation {
    condition     = var.deregistration_delay_seconds >= var.drain_seconds && var.deregistration_delay_seconds <= 3600
    error_message = "deregistration_delay_seconds must be at least drain_seconds and at most 3600."
  }
}
