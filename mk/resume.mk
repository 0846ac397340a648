# Resumable streams (issue 19, docs/resume.md): `make bench` also measures what the per-stream log
# costs (added delivery lag and CPU per token, in memory and in Redis, against no log) and writes
# bench/results/resume/<date>.{json,md}. redis-server comes from the Makefile's APT_PACKAGES.
.PHONY: bench-resume

bench-resume: deps
	$(BIN)/python -m bench.resume_cost

bench: bench-resume
