#!/usr/bin/env bash
# Assembles BENCHMARKS.md from the per-package benchmark reports, each of
# which names the commands that produced its figures.
set -euo pipefail
cd "$(dirname "$0")/.."
{
  cat docs/bench-summary.md
  for f in docs/bench-store.md scheduler/BENCHMARKS.md orchestrator/controllers/BENCHMARKS.md \
           runtime/BENCHMARKS.md orchestrator/agent/BENCHMARKS.md netproxy/BENCHMARKS.md \
           orchestrator/apiserver/BENCHMARKS.md orchestrator/cluster/BENCHMARKS.md internal/e2e/BENCHMARKS.md; do
    echo
    echo "<!-- from $f -->"
    sed -e 's/^#/##/' "$f"
  done
} > BENCHMARKS.md
