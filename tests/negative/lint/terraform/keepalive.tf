# Negative control for `streamkit lint` (never shipped): violates rule SK5 keepalive ONLY.
# ALB idle_timeout 300 outlives the app's 75 s keep-alive (502 on reused connections).
# Proven by: tests/lint/test_negative_controls.py::test_lint_catches_negative_control
resource "aws_lb" "llm" {
  load_balancer_type = "application"
  idle_timeout       = 300
}
