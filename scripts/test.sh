#!/usr/bin/env bash
# Run every check and test: lint, types, unit, integration (real RabbitMQ, SQLite,
# PostgreSQL) and end-to-end (whole hub processes).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/services.sh
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/pytest "$@"
