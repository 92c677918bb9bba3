#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the main job: `workbench demo` on the embedded default.
# Extra arguments go to `workbench demo` (e.g. --config configs/smoke.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/workbench demo "$@"
