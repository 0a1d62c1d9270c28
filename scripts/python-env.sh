#!/usr/bin/env bash
# Creates tests/python/.venv with the Python test peers (aiosmtpd, moto)
# if it is missing or its requirements changed.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=tests/python/.venv
req=tests/python/requirements.txt
stamp=$venv/.requirements
if [ -x "$venv/bin/python" ] && cmp -s "$req" "$stamp"; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
cp "$req" "$stamp"
echo "python test peers installed in $venv"
