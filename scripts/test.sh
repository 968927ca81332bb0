#!/usr/bin/env bash
# Set up (if needed, with test extras) and run lint plus the whole test suite.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh" --test
cd "$ROOT"
export OMP_THREAD_LIMIT=1
.venv/bin/ruff check digitize cli tests bench samples
.venv/bin/mypy digitize cli
.venv/bin/python -m pytest -p no:cacheprovider "$@"
