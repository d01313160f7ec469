#!/usr/bin/env bash
# Run the hub's main job on the embedded defaults: the demo, then keep serving.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/services.sh
.venv/bin/hub demo --serve "$@"
