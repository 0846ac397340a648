# Negative control, never shipped: an ALB idle timeout of 30 s with pings every 15 s leaves no room
# for one late heartbeat. Caught by tests/static/test_terraform.py::test_negative_configs_are_caught
# (rule idle-timeout).
resource "aws_lb" "llm" {
  load_balancer_type = "application"
  idle_timeout       = 30
}

output "app_keepalive_seconds" {
  value = 75
}
