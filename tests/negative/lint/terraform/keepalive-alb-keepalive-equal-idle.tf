# Negative control, never shipped: the app's keep-alive equal to the ALB idle timeout gives
# intermittent 502s (https://github.com/Instawork/llm-proxy/pull/38). Caught by
# tests/lint/test_negative_controls.py::test_lint_catches_negative_control (rule keepalive only).
variable "idle_timeout_seconds" {
  type    = number
  default = 300
}

resource "aws_lb" "llm" {
  load_balancer_type = "application"
  idle_timeout       = var.idle_timeout_seconds
}

output "app_keepalive_seconds" {
  value = var.idle_timeout_seconds
}
