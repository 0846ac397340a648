# Negative control, never shipped: an ALB idle timeout of 30 s with pings every 15 s leaves no room
# for one late heartbeat. Caught by tests/lint/test_negative_controls.py::test_lint_catches_negative_control
# (rule idle-timeout only).
resource "aws_lb" "llm" {
  load_balancer_type = "application"
  idle_timeout       = 30
}

output "app_keepalive_seconds" {
  value = 75
}
