#!/usr/bin/env bash
# Set up (scripts/setup.sh --browser) and run the whole test suite; extra arguments go to pytest.
# Fails as well when a process started by the suite is still running after it (listed, then killed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --browser
export WORKBENCH_TEST_RUN="tests-$$-$(date +%s%N)"
status=0
.venv/bin/python -m pytest "$@" || status=$?
.venv/bin/python scripts/leftover_processes.py "$WORKBENCH_TEST_RUN" || { [[ $status != 0 ]] || status=1; }
exit $status
