# Load runs (bench/load_run.py, docs/capacity.md): thousands of verified streams through every
# proxy, rolling restarts, proxy reloads, upstream faults and a 10-minute soak, all on 127.0.0.1,
# bounded in count and time. Results: bench/results/load/ (JSON, plots, summary.md).
#   make load                 the full run (about 30 minutes)
#   make load ARGS=--quick    a smaller version of everything
#   make load ARGS="--only soak"

.PHONY: load

load: deps
	$(BIN)/python -m bench.load_run $(ARGS)
