#!/usr/bin/env bash
# Set up a development/CI environment in .venv: the Debian tools some tests use, the CPU
# torch wheel, sonotok with every extra, and the X-ARES checker. Re-running is safe.
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages (speech synthesis, MIDI rendering, sox, headless Chromium for the report test).
packages=$(grep -v '^\s*#' .ci/apt-packages.txt | xargs || true)
missing=$(for p in $packages; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done | xargs || true)
if [ -n "$missing" ]; then
    if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else sudo="none"; fi
    if [ "$sudo" = "none" ]; then
        echo "warning: cannot install Debian packages ($missing) without root; tests that need them will fail" >&2
    else
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
    fi
fi

python3 -m venv .venv
. .venv/bin/activate
python -c "import torch" 2>/dev/null || pip install -q torch==2.13.0  # CPU wheel unless a torch is already here
pip install -q -e ".[dev]"  # dev includes the xares extra: what X-ARES imports, minus torchaudio
# X-ARES pins torchaudio, which does not import beside the CPU torch wheel: no dependencies.
# Run it as `python -m sonotok.integrations.xares_run ...` (stands in for torchaudio's two calls it makes).
pip install -q --no-deps xares==0.1.3
