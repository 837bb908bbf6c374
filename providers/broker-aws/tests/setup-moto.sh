#!/usr/bin/env bash
# Installs the moto server that broker-aws's tests run against, into a venv of its own.
#
#   providers/broker-aws/tests/setup-moto.sh        # venv at <workspace>/.cache/moto-venv
#   BROKER_MOTO_VENV=/some/dir setup-moto.sh        # elsewhere
#
# Exact versions come from moto-requirements.txt beside this script. Idempotent: a venv that
# already holds exactly those requirements is left alone (a file comparison, well under a
# second), and a venv built from other requirements is rebuilt. The tests run this themselves,
# under a file lock, before they start moto; CI may run it first to see the install on its own.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
workspace="$(cd "$here/../../.." && pwd)"
venv="${BROKER_MOTO_VENV:-$workspace/.cache/moto-venv}"
requirements="$here/moto-requirements.txt"
stamp="$venv/.broker-requirements"
python="${PYTHON:-python3}"

if [[ -x "$venv/bin/python" ]] && cmp -s "$requirements" "$stamp"; then
    exit 0
fi

if ! "$python" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
    echo "setup-moto.sh: needs Python 3.9+ with venv and ensurepip (apt-get install python3-venv)" >&2
    exit 1
fi

# Only ever delete something that is a venv (or an unfinished one of ours).
if [[ -e "$venv" ]]; then
    if [[ -f "$venv/pyvenv.cfg" ]]; then
        rm -rf "$venv"
    else
        echo "setup-moto.sh: $venv exists and is not a venv; move it away or set BROKER_MOTO_VENV" >&2
        exit 1
    fi
fi

echo "setup-moto.sh: installing moto into $venv" >&2
mkdir -p "$(dirname "$venv")"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements"
"$venv/bin/python" -c 'import moto.server, werkzeug' >/dev/null
cp "$requirements" "$stamp"
echo "setup-moto.sh: moto ready in $venv" >&2
