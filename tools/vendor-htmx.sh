#!/usr/bin/env bash
# Refreshes worker/console/static/htmx.min.js, the released htmx file the console serves.
# htmx publishes no Python package of its own and Debian has none, so this takes the released
# file unchanged from django-htmx's wheel (which vendors it) through pip, and checks its hash.
# htmx is under the Zero-Clause BSD licence. Run by hand when moving to a new htmx release:
#   bash tools/vendor-htmx.sh [django-htmx version] [expected sha256]
# then update HTMX_SHA256 in tests/unit/test_console_assets.py.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
version=${1:-1.29.0}
expected=${2:-71ea67185bfa8c98c39d31717c6fce5d852370fcdfd129db4543774d3145c0de}
target="$repo/worker/console/static/htmx.min.js"
pip=${PIP:-$repo/.venv/bin/pip}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$pip" download --quiet --no-deps --only-binary=:all: "django-htmx==$version" -d "$work"
python3 - "$work" "$target" "$expected" <<'PY'
import hashlib, pathlib, sys, zipfile
work, target, expected = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
(wheel,) = work.glob("django_htmx-*.whl")
data = zipfile.ZipFile(wheel).read("django_htmx/static/django_htmx/htmx-2.min.js")
digest = hashlib.sha256(data).hexdigest()
if digest != expected:
    sys.exit(f"vendor-htmx: sha256 {digest} is not the expected {expected}")
target.write_bytes(data)
print(f"vendor-htmx: wrote {target} ({len(data)} bytes, sha256 {digest})")
PY
