#!/usr/bin/env bash
# import-linter over QuantDesk's layers (the contracts in pyproject.toml). The source folders
# app/, ui/ and engine/ are installed as one package (quantdesk, quantdesk.ui, quantdesk.engine),
# which import-linter cannot follow through the editable install's mapping: they are staged
# (copied) in that shape first, and the linter reads the copy. Extra arguments go to lint-imports.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
mkdir "$STAGE/quantdesk"
cp -R "$ROOT/app/." "$STAGE/quantdesk/"
cp -R "$ROOT/ui" "$STAGE/quantdesk/ui"
cp -R "$ROOT/engine" "$STAGE/quantdesk/engine"
find "$STAGE" -name __pycache__ -prune -exec rm -rf {} +
cd "$STAGE"
PYTHONPATH="$STAGE" "$ROOT/.venv/bin/lint-imports" "$ROOT/pyproject.toml" "$@"
