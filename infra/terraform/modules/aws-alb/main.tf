# streamkit: AWS Application Load Balancer in front of the SSE app (hop: client -> ALB -> app).
# Replace nothing here: pass your VPC, subnets, security groups and certificate as inputs
# (see README.md). Every setting below that differs from the AWS default says why.
# Proven by: tests/static/test_terraform.py::test_budget_invariants_hold[modules/aws-alb]
#            tests/static/test_terraform.py::test_checkov_offline
# The streaming contract itself (pings, no buffering) is proven through local proxies in tests/e2e/;
# nothing here runs against AWS in the test suite.

locals {
  # The app's keep-alive must outlast the ALB's idle timeout on target connections, else the ALB
  # reuses a connection the app is closing and answers 502 (POST requests are not retried).
  # The margin keeps the ALB the side that closes first, also when timers fire a little late.
  # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-load-balancer-attributes.html#connection-idle-timeout
  keepalive_margin_seconds = 15
  app_keepalive_seconds    = var.idle_timeout_seconds + local.keepalive_margin_seconds
}

################################################################################
# Load Balancer
################################################################################

resource "aws_lb" "this" {
  #checkov:skip=CKV2_AWS_28:A WAF web ACL is a policy decision of the account owner; attach one with aws_wafv2_web_acl_association and the lb_arn output.
  #checkov:skip=CKV_AWS_91:Access logs need a bucket the user owns: set access_logs_bucket (checkov cannot see through the dynamic block).
  name               = var.name
  load_balancer_type = "application"
  internal           = var.internal
  subnets            = var.subnet_ids
  security_groups    = var.security_group_ids

  # Closes a client or target connection after this many seconds without data. SSE comment pings
  # (every ping_interval_seconds) count as data; HTTP/2 PING frames from clients do not.
  # Explicit on purpose: same as the AWS default, kept so the budget check sees it.
  # Default: 60
  # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-load-balancer-attributes.html#connection-idle-timeout
  idle_timeout = var.idle_timeout_seconds

  # Longest life of a client connection. It must not end while a stream is open.
  # Explicit on purpose: same as the AWS default, kept so the budget check sees it.
  # Default: 3600
  # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-load-balancer-attributes.html#client-keep-alive-duration
  client_keep_alive = var.client_keep_alive_seconds

  # Drop requests with header names that are not valid HTTP; unrelated to streaming, a hardening
  # default of the kit.
  # Default: false
  # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-load-balancer-attributes.html#http-header-modification
  drop_invalid_header_fields = true

  # Refuse API deletion of a shared entry point (input; this module turns it on).
  # Default: false
  # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-load-balancer-attributes.html#deletion-protection
  enable_deletion_protection = var.enable_deletion_protection

  dynamic "access_logs" {
    for_each = var.access_logs_bucket == "" ? [] : [var.access_logs_bucket]
    content {
      bucket  = access_logs.value
      enabled = true
    }
  }

  tags = var.tags
}

################################################################################
# Target group (ALB -> app)
################################################################################

resource "aws_lb_target_group" "app" {
  name        = "${var.name}-app"
  vpc_id      = var.vpc_id
  port        = var.target_port
  protocol    = var.target_protocol
  target_type = var.target_type

  # uvicorn speaks HTTP/1.1 only (no HTTP/2, no h2c). Clients may still use HTTP/2 to the ALB.
  # Explicit on purpose: same as the AWS default; HTTP2 or GRPC here would break every request.
  # Default: HTTP1
  # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-target-groups.html#target-group-protocol-version
  protocol_version = "HTTP1"

  # A deregistering target keeps its open streams this long, then the ALB closes them. The app
  # ends its streams with a terminal event within drain_seconds of SIGTERM, so this must be
  # at least drain_seconds.
  # Explicit on purpose: same as the AWS default, kept so the budget check sees it.
  # Default: 300
  # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-target-groups.html#deregistration-delay
  deregistration_delay = var.deregistration_delay_seconds

  health_check {
    # The app's readiness endpoint: 503 while draining, so no new stream lands on a leaving target.
    # Default: /
    # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html
    path    = var.health_check_path
    matcher = "200"
  }

  tags = var.tags
}

################################################################################
# Listeners
################################################################################

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = var.ssl_policy
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.app.arn
  }

  tags = var.tags
}

resource "aws_lb_listener" "http_redirect" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"
    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }

  tags = var.tags
}
