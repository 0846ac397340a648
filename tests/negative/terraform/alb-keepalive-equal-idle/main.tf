# Negative control, never shipped: the app's keep-alive equal to the ALB idle timeout gives
# intermittent 502s (https://github.com/Instawork/llm-proxy/pull/38). Caught by
# tests/static/test_terraform.py::test_negative_configs_are_caught (rule keepalive).
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
