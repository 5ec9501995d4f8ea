#!/usr/bin/env bash
# After a failed pytest run: if the run crashed, print the test that was running and the
# crashing thread's stack from the report tests/conftest.py writes (QUANTDESK_CRASH_REPORT).
report="${1:?usage: crash_summary.sh REPORT}"
[ -f "$report" ] || exit 0
[ "$(wc -l < "$report")" -gt 1 ] || exit 0   # only the test's name: no crash
echo "==> The test process crashed. $(head -1 "$report")"
if grep -q "^Current thread" "$report"; then
    sed -n '/^Current thread/,/^$/p' "$report" \
        | grep -v -e '/_pytest/' -e '/pluggy/' -e 'frozen runpy' -e '/pytest/__main__' | head -40
else
    echo "(the crash was in a thread that runs no Python; every Python thread follows)"
    sed -n '2,60p' "$report"
fi
