#!/usr/bin/env bash
# Set up qbench on a fresh machine: system packages (when root), a venv with the pinned stack
# (torch 2.14.1 / torchvision 0.29.1 / executorch 1.5.1), and the native runner for this host.
#   scripts/setup.sh          what `qbench run` needs
#   scripts/setup.sh --test   plus what the tests need (adb, sshd, chromium, shells for power tests, postgresql)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

packages=()
command -v cmake >/dev/null || packages+=(cmake)
command -v g++ >/dev/null || packages+=(g++)
if (( want_test )); then
    command -v adb >/dev/null || packages+=(adb)
    [[ -x /usr/sbin/sshd ]] || packages+=(openssh-server)
    command -v ssh >/dev/null || packages+=(openssh-client)
    command -v chromium >/dev/null || packages+=(chromium)
    command -v mksh >/dev/null || packages+=(mksh)      # Android's shell, for the power sampling loop
    command -v busybox >/dev/null || packages+=(busybox)
    # Cross-build the Raspberry Pi (linux-aarch64) runner and the phone bundle (its glibc comes with the
    # cross compiler), and run both under user-mode emulation.
    command -v aarch64-linux-gnu-g++ >/dev/null || packages+=(g++-aarch64-linux-gnu)
    command -v qemu-aarch64 >/dev/null || packages+=(qemu-user)
    # The shared results store's tests run against a real server (scripts/pg_test_server.sh starts it).
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || packages+=(postgresql)
fi
if (( ${#packages[@]} )); then
    if [[ $(id -u) -eq 0 ]]; then
        echo "setup: apt-get install ${packages[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    else
        echo "setup: please install with your package manager: ${packages[*]}" >&2
    fi
fi

[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
extras=""
(( want_test )) && extras="[test]"
.venv/bin/python -m pip install -q -e ".${extras}"
# The native runner (C++ against the executorch wheel); qbench falls back to Python if this fails.
.venv/bin/qbench runner build --target host >/dev/null || echo "setup: native runner not built; the Python runner will be used" >&2
echo "setup: ready (.venv/bin/qbench)"
