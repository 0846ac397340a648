# Negative control, never shipped: a 10 s deregistration delay cuts streams before the app's drain
# window ends them with a terminal event. Caught by
# tests/lint/test_negative_controls.py::test_lint_catches_negative_control (rule drain only).
resource "aws_lb" "llm" {
  load_balancer_type = "application"
}

resource "aws_lb_target_group" "llm" {
  port                 = 8000
  protocol             = "HTTP"
  deregistration_delay = 10
}

output "app_keepalive_seconds" {
  value = 75
}
