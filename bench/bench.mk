# Included by the top-level Makefile. `make bench` starts the suite on its own
# database and Redis keyspace, measures it next to two baselines (net/http +
# Redis, net/http + Postgres) and prints a Markdown report (~2–3 minutes on
# 2 cores). Pass flags with BENCH_FLAGS, e.g.
#   make bench BENCH_FLAGS='-run "authorize|baseline" -duration 3s -out /tmp/bench.md'
.PHONY: bench
bench: ; $(GO) run ./bench/cmd/moreid-bench $(BENCH_FLAGS)
