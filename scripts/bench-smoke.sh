#!/usr/bin/env bash
# Run every benchmark once at a tiny size, so that one which cannot run shows in CI.
# Figures are printed, never asserted; compare ratios only in full-size runs.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
run() {
  echo "bench-smoke: $*"
  timeout 300 "$py" "$@"
}
run benchmarks/signing.py --seconds 0.2
run benchmarks/mappings.py --seconds 0.2
run benchmarks/client_auth.py --clients 5 --calls 50
run benchmarks/register_tenants.py --tenants 3 --connections 3
run benchmarks/poller.py --mailboxes 3 --documents 1 --rounds 2 --concurrency 2
run benchmarks/relay.py --rows 50 --databases sqlite,postgresql --idle-seconds 0.5 --blocking-messages 20
run benchmarks/demo_throughput.py --skip-demo --databases sqlite,postgresql --core-documents 20 \
  --offices 2 --workers 1 --broker-messages 200 --sqlite-rows 200 --postgres-rows 200 \
  --http-requests 100
run benchmarks/isolation.py --offices 5 --burst 100 --background 50 --slow-documents 4 --down-documents 6 --slow-s 1
# The Celery peer needs the bench extra; CI's machine is fresh, so install it when missing.
if ! "$py" -c 'import celery' 2>/dev/null; then
  .venv/bin/pip install --quiet -e '.[bench]'
fi
run benchmarks/peer_celery.py --documents 60 --offices 2 --workers 1 --stage-documents 50 \
  --broker-messages 200 --postgres-rows 200 --http-requests 100
echo "bench-smoke: every benchmark ran"
