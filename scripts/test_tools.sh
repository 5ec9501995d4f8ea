#!/usr/bin/env bash
# The system tools the test suite uses beyond .venv, installed from Debian when missing (CI
# runs as root with apt-get): a virtual X server with the libraries Qt's xcb plugin needs (the
# journeys, scripts/under_x.sh) and a private D-Bus session with GNOME Keyring (the test of
# the Hugging Face token in the desktop's secret store).
#   usage: scripts/test_tools.sh [--require-x]
set -euo pipefail
x_pkgs="xvfb xauth libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
        libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libegl1 libgl1
        libfontconfig1 libdbus-1-3 fonts-dejavu-core"
keyring_pkgs="dbus-daemon gnome-keyring"
x_missing() {
    local libs  # read once: `ldconfig -p | grep -q` fails under pipefail when grep stops early
    libs="$(ldconfig -p)"
    ! command -v xvfb-run >/dev/null || ! command -v xauth >/dev/null \
        || ! grep -q libxcb-cursor.so.0 <<<"$libs" || ! grep -q libxcb-icccm.so.4 <<<"$libs" \
        || ! grep -q libxkbcommon-x11.so.0 <<<"$libs"
}
keyring_missing() {
    ! command -v dbus-run-session >/dev/null || ! command -v gnome-keyring-daemon >/dev/null
}
want=""
if x_missing; then want="$x_pkgs"; fi
if keyring_missing; then want="$want $keyring_pkgs"; fi
[[ -n "${want// /}" ]] || exit 0
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "Some tests need Debian's packages: $(echo $want)" >&2
    echo "(sudo apt-get install ...); without them those tests are skipped or refused." >&2
    if [[ "${1:-}" == "--require-x" ]] && x_missing; then exit 1; fi
    exit 0
fi
echo "==> Installing the test tools: $(echo $want) (apt-get)"
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $want >/dev/null
