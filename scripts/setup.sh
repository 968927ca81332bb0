#!/usr/bin/env bash
# Install what digitize needs on Debian 12 (idempotent: safe to run twice, quick the second time).
#   scripts/setup.sh          runtime: tesseract (vie), qpdf, poppler, fonts, .venv + package
#   scripts/setup.sh --test   the same plus test needs (SoftHSM2, NSS tools, Java for veraPDF)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODE="${1:-run}"

# Debian packages. Runtime: OCR engine + Vietnamese model, PDF checkers, jbig2dec (pikepdf
# decodes JBIG2 scanner pages with it), a Vietnamese-capable
# font (Noto) for the text layer and the visible signature, Python venv support.
PKGS=(tesseract-ocr tesseract-ocr-vie tesseract-ocr-script-viet qpdf poppler-utils
      fonts-noto-core fontconfig jbig2dec python3 python3-venv python3-pip ca-certificates)
if [ "$MODE" = "--test" ]; then
  # Tests: SoftHSM2 + OpenSC (PKCS#11 token), certutil for pdfsig's NSS trust store,
  # a JDK + JAXB runtime to compile and run the veraPDF driver, Chromium and its WebDriver
  # for the review page's browser tests, Redis for the hub's tests.
  PKGS+=(softhsm2 opensc libnss3-tools openssl default-jdk-headless libjaxb-java
         libjaxb-api-java libactivation-java chromium chromium-driver redis-server)
fi

missing=()
for pkg in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root to install: ${missing[*]}" >&2; exit 1; }
    SUDO="sudo"
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python >= 3.11 (Debian 12 ships 3.11).
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || { echo "setup: Python >= 3.11 is required ($PY is $("$PY" --version 2>&1))" >&2; exit 1; }

VENV="$ROOT/.venv"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
EXTRAS=""
[ "$MODE" = "--test" ] && EXTRAS="[test]"
STAMP="$VENV/.digitize-installed"
HASH="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
HAVE="$(cat "$STAMP" 2>/dev/null || true)"
# Reinstall only when pyproject.toml changed (a test install also serves the runtime).
if [ "$HAVE" != "$HASH$EXTRAS" ] && [ "$HAVE" != "$HASH[test]" ]; then
  echo "setup: installing Python packages into $VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT$EXTRAS"
  echo "$HASH$EXTRAS" > "$STAMP"
fi
echo "setup: ready ($("$VENV/bin/digitize" --version), $(tesseract --version 2>&1 | head -1))"
