# Negative control for `streamkit lint` (never shipped): violates rule SK3 idle-timeout ONLY.
# ALB idle_timeout 10 is shorter than the 15 s ping interval.
# Proven by: tests/lint/test_negative_controls.py::test_lint_catches_negative_control
resource "aws_lb" "llm" {
  load_balancer_type = "application"
  idle_timeout       = var.idle_timeout
}

variable "idle_timeout" {
  type    = number
  default = 10
}
