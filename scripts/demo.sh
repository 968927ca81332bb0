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
  # The samples are signed with this machine's DEMO identity: accept it (--allow-demo). Its
  # certificate names no OCSP responder or CRL, so the best verdict is 66: every check passed,
  # revocation not checkable. Anything else (a hash, signature, identity or structure failure)
  # stops the demo with that code.
  status=0
  .venv/bin/digitize verify "$bundle" --lang en --allow-demo || status=$?
  if [ "$status" -ne 0 ] && [ "$status" -ne 66 ]; then
    echo "verification of $bundle failed (exit $status)" >&2
    exit "$status"
  fi
done
echo "Bundles are in $ROOT/out/ (signed with the DEMO identity: not valid for real use)."
