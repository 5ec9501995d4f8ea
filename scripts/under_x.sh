#!/usr/bin/env bash
# Run a command under a real X server (Xvfb) with Qt's xcb platform: some faults only show
# there (object lifetimes, focus, real window geometry). Installs Debian's xvfb and the
# libraries Qt's xcb plugin needs when they are missing (CI runs as root with apt-get).
#   usage: scripts/under_x.sh COMMAND [ARGS...]
set -euo pipefail
pkgs="xvfb xauth libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
      libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libegl1 libgl1
      libfontconfig1 libdbus-1-3 fonts-dejavu-core"
missing() {
    local libs  # read once: `ldconfig -p | grep -q` fails under pipefail when grep stops early
    libs="$(ldconfig -p)"
    ! command -v xvfb-run >/dev/null || ! command -v xauth >/dev/null \
        || ! grep -q libxcb-cursor.so.0 <<<"$libs" || ! grep -q libxcb-icccm.so.4 <<<"$libs" \
        || ! grep -q libxkbcommon-x11.so.0 <<<"$libs"
}
if missing; then
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        echo "The journey tests run under a virtual X server: install Debian's packages" >&2
        echo "  $(echo $pkgs)" >&2
        echo "(sudo apt-get install ...) and run 'make test' again." >&2
        exit 1
    fi
    echo "==> Installing a virtual X server for the journey tests (apt-get)"
    apt-get update -qq >/dev/null
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
fi
# XVFB_SCREEN=1024x640 checks a small screen (docs screenshots)
exec xvfb-run -a -s "-screen 0 ${XVFB_SCREEN:-1280x800}x24 -nolisten tcp" env QT_QPA_PLATFORM=xcb "$@"
