# streamkit example (Cloudflare): outputs.
# Proven by: tests/static/test_terraform.py::test_budget_invariants_hold[examples/cloudflare]

output "cache_ruleset_id" {
  description = "ID of the cache ruleset that bypasses the cache on the streaming paths."
  value       = cloudflare_ruleset.sse_cache_bypass.id
}
