#!/usr/bin/env bash
# Installs what Varde's build needs beyond the Rust toolchain, only where it is missing.
# - libclang: rocksdb's build generates its bindings with bindgen, which loads libclang.so.
# - python3 with venv: the tests of clients/python and clients/fhir-check make venvs and install
#   their pinned requirements from PyPI into them.
# Protobuf needs nothing: the .proto files are compiled by protox, in Rust, at build time.
set -euo pipefail

need_sudo() { if [ "$(id -u)" -ne 0 ]; then echo sudo; fi; }

# Debian lists it as libclang-NN.so; libclang-cpp (present on a fresh machine) is not what bindgen loads.
have_libclang() {
    ldconfig -p 2>/dev/null | grep -Eq 'libclang(-[0-9]+)?\.so' && return 0
    compgen -G '/usr/lib/llvm-*/lib/libclang.so*' >/dev/null
}

if ! have_libclang; then
    echo "setup: installing libclang (needed to build rocksdb's bindings)" >&2
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "setup: libclang is missing and apt-get is not available; install libclang-dev (or your system's libclang package) and run again" >&2
        exit 1
    fi
    $(need_sudo) apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $(need_sudo) apt-get install -y -qq clang libclang-dev >/dev/null
fi

# Debian splits venv (and the pip it bootstraps) out of python3.
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "setup: installing python3 and python3-venv (the Python clients' tests make venvs)" >&2
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "setup: python3 with venv is missing and apt-get is not available; install python3 and its venv module and run again" >&2
        exit 1
    fi
    $(need_sudo) apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $(need_sudo) apt-get install -y -qq python3 python3-venv >/dev/null
fi
