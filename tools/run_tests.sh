#!/usr/bin/env bash
# The test command of README: installs the environment if needed (tools/setup.sh, idempotent),
# then runs the whole suite on CPU. Extra arguments go to pytest (e.g. -k montage).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash tools/setup.sh
VENV=${MCL_VENV:-$ROOT/.venv}
START=$(date +%s)
"$VENV/bin/python" -m pytest tests -q -p no:cacheprovider --durations=15 "$@"
echo "[tests] wall time $(( $(date +%s) - START )) s"
