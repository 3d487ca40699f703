#!/usr/bin/env bash
# Runs every benchmark at the sizes the issues ask for; each prints our figure beside its anchor.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
"$py" -m bench.bench_drain --jobs 100000
# BEFORE: the commit just before tracing landed, so that only tracing differs
"$py" -m bench.bench_tracing --jobs 20000 --rounds 3 --before "${BEFORE:-935c783}"
"$py" -m bench.bench_latency --jobs 5000 --rate 500
"$py" -m bench.bench_api
# one API process is held to one core; two share the machine with PostgreSQL
"$py" -m bench.bench_api --stats-rows 0 --api-workers 2 --batch-connections 8
"$py" -m bench.bench_controller
"$py" -m bench.bench_console
"$py" -m bench.bench_workflows --jobs 10000
