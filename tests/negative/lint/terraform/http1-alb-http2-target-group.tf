# Negative control, never shipped: an HTTP/2 target group cannot talk to uvicorn (HTTP/1.1 only).
# Caught by tests/lint/test_negative_controls.py::test_lint_catches_negative_control (rule http1 only).
resource "aws_lb" "llm" {
  load_balancer_type = "application"
}

resource "aws_lb_target_group" "llm" {
  port             = 8000
  protocol         = "HTTP"
  protocol_version = "HTTP2"
}

output "app_keepalive_seconds" {
  value = 75
}
