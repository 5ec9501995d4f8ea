#!/usr/bin/env bash
# Run a command under a real X server (Xvfb) with Qt's xcb platform: some faults only show
# there (object lifetimes, focus, real window geometry). scripts/test_tools.sh installs Debian's
# xvfb and the libraries Qt's xcb plugin needs when they are missing.
#   usage: scripts/under_x.sh COMMAND [ARGS...]
set -euo pipefail
bash "$(dirname "$0")/test_tools.sh" --require-x
# XVFB_SCREEN=1024x640 checks a small screen (docs screenshots)
exec xvfb-run -a -s "-screen 0 ${XVFB_SCREEN:-1280x800}x24 -nolisten tcp" env QT_QPA_PLATFORM=xcb "$@"
