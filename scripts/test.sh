#!/usr/bin/env bash
# Run every check and test: lint, types, unit, integration (real RabbitMQ, SQLite,
# PostgreSQL), end-to-end (whole hub processes, a headless browser) and the fault drill.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/services.sh
scripts/browser.sh
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/pytest "$@"
