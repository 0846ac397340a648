# Negative control for `streamkit lint` (never shipped): violates rule SK6 http1 ONLY.
# target group protocol_version HTTP2: uvicorn speaks HTTP/1.1 only.
# Proven by: tests/lint/test_negative_controls.py::test_lint_catches_negative_control
resource "aws_lb_target_group" "llm" {
  port             = 8000
  protocol         = "HTTP"
  protocol_version = "HTTP2"
}
