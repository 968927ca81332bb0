#!/usr/bin/env bash
# Set up (if needed) and digitise the bundled sample dossiers into out/, then verify them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
export OMP_THREAD_LIMIT=1
for dossier in samples/*/; do
  .venv/bin/digitize run "$dossier" --out out --overwrite
done
for bundle in out/*/; do
  .venv/bin/digitize verify "$bundle" --lang en
done
echo "Bundles are in $ROOT/out/ (signed with the DEMO identity: not valid for real use)."
