#!/usr/bin/env bash
# Bring this checkout to a runnable state: Debian packages, a .venv with the
# Python dependencies, and the firmware and guests built.  Idempotent: each
# step is skipped when it is already done.  Sourced by tools/run and tools/test.
set -euo pipefail

top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$top"

# Debian packages the machine, the guest build and the end-to-end tests use.
debs=(gcc gcc-multilib make python3-venv qemu-system-x86 virt-viewer xvfb xdotool
      imagemagick x11-utils gir1.2-spiceclientglib-2.0 gir1.2-gtk-3.0 python3-gi
      libjpeg-turbo-progs)
missing=()
for p in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "spicevm setup: installing Debian packages: ${missing[*]}" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The virtual environment, refreshed when pyproject.toml changes.  It is
# made from Debian's own interpreter when that is 3.11 or newer (PYTHON
# names another): Debian builds CPython with profile-guided and link-time
# optimisation and links libpython into the executable.  Against a
# CPython built from source with default options, as a version manager
# installs one, an interpreter micro-benchmark took a third less time on
# it and the display worker a sixth less CPU per streamed frame.  A .venv
# made from another interpreter is made again.
py="${PYTHON:-}"
if [ -z "$py" ]; then
    py=python3
    if /usr/bin/python3 -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
    then
        py=/usr/bin/python3
    fi
fi
base() { "$1" -c 'import sys; print(sys.base_prefix, sys.version)' 2>/dev/null; }
if [ -x .venv/bin/python ] && [ "$(base .venv/bin/python)" != "$(base "$py")" ]; then
    echo "spicevm setup: making .venv again from $py" >&2
    rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
    echo "spicevm setup: creating .venv" >&2
    "$py" -m venv .venv
fi
stamp=.venv/.spicevm-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "spicevm setup: installing Python packages" >&2
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e '.[test]'
    echo "$want" > "$stamp"
fi

# Firmware and guests (incremental).
.venv/bin/python tools/build_guest.py >&2

# numba's cache of the compiled kernels (kept in __pycache__), so that the
# first session does not compile them on the display worker, one stall
# after another.  Redone when the server or device code, this warm-up or the
# packages change: a kernel compiles in the constants and the inlined
# kernels of the modules it imports, wherever they are.
kernels="$( (cat "$stamp" tools/warm_kernels.py
             find spice devices -name '*.py' -type f -print0 | sort -z | xargs -0r cat) \
            | sha256sum | cut -d' ' -f1)"
kstamp=.venv/.spicevm-kernels
if [ "$(cat "$kstamp" 2>/dev/null)" != "$kernels" ]; then
    echo "spicevm setup: compiling the numba kernels" >&2
    # Start from nothing: numba checks a cached kernel against its own source
    # file only, so one that inlined a kernel from another file (jpeg_dct
    # into jpeg_kernels, say) would go on running that kernel's old code.
    find spice devices vm -path '*/__pycache__/*' \( -name '*.nbi' -o -name '*.nbc' \) -delete
    if .venv/bin/python tools/warm_kernels.py; then
        echo "$kernels" > "$kstamp"
    elif [ "${CI:-}" = "true" ]; then
        echo "spicevm setup: the kernels could not be compiled ahead" >&2
        exit 1
    else
        # not fatal for a user: what is not cached compiles when first used
        echo "spicevm setup: warning: the kernels were not all compiled ahead" >&2
    fi
fi
