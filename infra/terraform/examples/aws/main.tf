# streamkit example (AWS): an Application Load Balancer in front of the SSE app.
# Copy infra/terraform/modules/aws-alb into your repository as modules/streamkit-aws-alb and this
# folder's files next to it; fill in variables.tf; then `terraform init && terraform apply`.
# Then set the app's environment from the `app_environment` output (KEEPALIVE above all).
# Proven by: tests/static/test_terraform.py::test_examples_use_copyable_sources
#            tests/static/test_terraform.py::test_terraform_validate

module "llm_alb" {
  source = "./modules/streamkit-aws-alb"

  name               = "llm-sse"
  vpc_id             = var.vpc_id
  subnet_ids         = var.public_subnet_ids
  security_group_ids = var.lb_security_group_ids
  certificate_arn    = var.certificate_arn

  # The app's timeout budget: keep these equal to the app's PING_INTERVAL, MAX_STREAM_SECONDS and
  # DRAIN_SECONDS (the values here are the app's defaults).
  ping_interval_seconds = 15
  max_stream_seconds    = 3600
  drain_seconds         = 25

  # For example only: lets `terraform destroy` remove the load balancer.
  enable_deletion_protection = false
}

output "lb_dns_name" {
  description = "Point your hostname here (CNAME or Route 53 alias)."
  value       = module.llm_alb.lb_dns_name
}

output "target_group_arn" {
  description = "Register the app's targets here (ECS service load_balancer block, EKS TargetGroupBinding, ...)."
  value       = module.llm_alb.target_group_arn
}

output "app_environment" {
  description = "Set these on the app (KEEPALIVE must exceed the ALB idle timeout)."
  value       = module.llm_alb.app_environment
}
