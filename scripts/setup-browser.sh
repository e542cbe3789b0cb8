#!/usr/bin/env bash
# Installs what the real-browser test (python/tests/test_browser.py) needs beyond the Jupyter venv:
# the distribution's Chromium, which Playwright drives through its executable path. Playwright
# never downloads a browser of its own here: nothing runs `playwright install`, and the test
# passes the system Chromium's path to `launch(executable_path=...)`.
#
# Safe to run again: every step is skipped when already done. Called by scripts/setup.sh; also
# run by the browser test itself when Chromium is missing.
set -euo pipefail

TOOLS="${CRAC_TOOLS:-$HOME/.cache/crac-tools}"
JUPYTER_VENV="${CRAC_JUPYTER_VENV:-$TOOLS/jupyter}"

find_chromium() {
    local name
    for name in chromium chromium-browser; do
        if command -v "$name" >/dev/null 2>&1; then
            command -v "$name"
            return 0
        fi
    done
    return 1
}

if ! find_chromium >/dev/null; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "setup-browser: chromium is missing and this user cannot install it;" \
                "install the 'chromium' package as root" >&2
            exit 1
        fi
        SUDO="sudo"
    fi
    echo "setup-browser: installing chromium with apt-get" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        chromium >/dev/null
fi
chromium="$(find_chromium)" || {
    echo "setup-browser: apt-get ran but no chromium is on PATH" >&2
    exit 1
}
echo "setup-browser: chromium at $chromium" >&2

# The Python side (playwright, jupyterlab) belongs to the Jupyter venv that scripts/setup.sh
# creates; report what is missing there rather than installing into it behind its back.
if [ -x "$JUPYTER_VENV/bin/python" ]; then
    if "$JUPYTER_VENV/bin/python" -c 'import playwright.sync_api, jupyterlab' >/dev/null 2>&1; then
        echo "setup-browser: playwright and jupyterlab found in $JUPYTER_VENV" >&2
    else
        echo "setup-browser: $JUPYTER_VENV lacks playwright or jupyterlab;" \
            "scripts/setup.sh installs them" >&2
    fi
else
    echo "setup-browser: no Jupyter venv at $JUPYTER_VENV yet; scripts/setup.sh creates it" >&2
fi
