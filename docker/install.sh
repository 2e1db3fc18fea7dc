#!/bin/sh
# How the image installs ingest, also run natively by CI so the two never drift apart:
# a virtualenv at $1 with exactly the locked runtime dependencies, then ingest itself.
set -eu
venv=${1:?usage: docker/install.sh VENV_DIR}
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --no-cache-dir --require-hashes -r requirements.lock
"$venv/bin/pip" install --quiet --no-cache-dir --no-deps .
"$venv/bin/ingest" --version
