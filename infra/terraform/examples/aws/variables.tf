# streamkit example (AWS): what you fill in (terraform.tfvars or -var).
# Proven by: tests/static/test_terraform.py::test_terraform_validate

variable "region" {
  description = "AWS region of the load balancer."
  type        = string
}

variable "vpc_id" {
  description = "VPC that holds the app's tasks, pods or instances."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets in at least two Availability Zones."
  type        = list(string)
}

variable "lb_security_group_ids" {
  description = "Security groups of the load balancer: 443 and 80 in, the app port out."
  type        = list(string)
}

variable "certificate_arn" {
  description = "ACM certificate for your hostname."
  type        = string
}
