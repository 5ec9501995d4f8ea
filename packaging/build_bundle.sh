#!/usr/bin/env bash
# Build the one-folder bundle (dist/quantdesk/) with PyInstaller and run its self-test.
#     bash packaging/build_bundle.sh            # uses .venv (made by scripts/setup_env.sh)
# Prints the bundle's path and size. The bundle starts without a Python installation.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
[[ -x "$PY" ]] || { echo "build_bundle: run scripts/setup_env.sh first" >&2; exit 1; }
"$PY" -c "import PyInstaller" 2>/dev/null \
    || { echo "build_bundle: PyInstaller is missing: scripts/setup_env.sh installs it" >&2; exit 1; }
cd "$ROOT"
"$PY" -m PyInstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller \
    packaging/quantdesk.spec >&2
BUNDLE="$ROOT/dist/quantdesk"
QT_QPA_PLATFORM=offscreen "$BUNDLE/quantdesk" --self-test >&2
echo "$BUNDLE ($(du -sh "$BUNDLE" | cut -f1))"
