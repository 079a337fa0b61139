#!/usr/bin/env bash
# Print the path of a Chromium binary for the browser test (tests/e2e), installing Debian's
# `chromium` when running as root. Otherwise print nothing and say on stderr how to install it:
# the browser test is then skipped with that reason, never passed.
set -euo pipefail

find_chromium() {
    local candidate
    for candidate in "${CHROMIUM:-}" "$(command -v chromium || true)" "$(command -v chromium-browser || true)"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if find_chromium; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Chromium not found: installing Debian's chromium for the browser test" >&2
    if apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2 && find_chromium; then
        exit 0
    fi
fi
echo "No Chromium for the browser test (tests/e2e); it will be skipped. Install it, then rerun make test:" >&2
echo "    sudo apt-get install -y chromium" >&2
exit 0
