# streamkit: outputs of the AWS ALB module, including what the app must be configured with.
# Proven by: tests/static/test_terraform.py::test_budget_invariants_hold[modules/aws-alb]

output "lb_arn" {
  description = "ARN of the load balancer (attach a WAF web ACL to it)."
  value       = aws_lb.this.arn
}

output "lb_dns_name" {
  description = "DNS name of the load balancer (point your record at it)."
  value       = aws_lb.this.dns_name
}

output "lb_zone_id" {
  description = "Route 53 zone ID of the load balancer, for an alias record."
  value       = aws_lb.this.zone_id
}

output "target_group_arn" {
  description = "ARN of the target group: register the app's tasks, pods or instances here."
  value       = aws_lb_target_group.app.arn
}

output "app_keepalive_seconds" {
  description = "The smallest keep-alive the app must use (its KEEPALIVE): longer than the ALB idle timeout, so the ALB closes idle connections first."
  value       = local.app_keepalive_seconds
}

output "app_environment" {
  description = "Environment variables for the app that match this load balancer's timeout budget."
  value = {
    KEEPALIVE          = local.app_keepalive_seconds
    PING_INTERVAL      = var.ping_interval_seconds
    MAX_STREAM_SECONDS = var.max_stream_seconds
    DRAIN_SECONDS      = var.drain_seconds
  }
}
