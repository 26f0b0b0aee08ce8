# shellcheck shell=bash
# Shared by scripts/setup, scripts/test, scripts/develop and scripts/bench.
#
# Home Assistant needs Python >= 3.14.2. When a python3.14 of that version is on
# PATH it is used directly. Otherwise the scripts build a Debian sid root with
# python3.14 (cached between runs) and run everything inside it with the project
# bind-mounted at the same path, in a private mount namespace so that nothing
# stays mounted when the command ends.

set -euo pipefail

LV_PROJECT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LV_CACHE=${LOCAL_VOICE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/local-voice}
LV_ROOT="$LV_CACHE/sid-root"

lv_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Echo a python3.14 on PATH that satisfies Home Assistant, or nothing.
lv_native_python() {
    local py
    for py in python3.14 python3; do
        if command -v "$py" >/dev/null 2>&1 &&
            "$py" -c 'import sys; sys.exit(sys.version_info < (3, 14, 2))' 2>/dev/null; then
            command -v "$py"
            return 0
        fi
    done
    return 0
}

if [ -z "${LV_MODE:-}" ]; then
    if [ -n "$(lv_native_python)" ] && [ "${LOCAL_VOICE_FORCE_ROOT:-0}" != 1 ]; then
        LV_MODE=native
    else
        LV_MODE=root
    fi
fi
export LV_MODE

# Where the virtual environments live, as seen by the commands that use them.
if [ "$LV_MODE" = native ]; then
    LV_VENVS="$LV_CACHE/venvs"
    LV_PYTHON=$(lv_native_python)
else
    LV_VENVS=/opt/local-voice
    LV_PYTHON=python3.14
fi
export LV_PYTHON
LV_HA_VENV="$LV_VENVS/ha"
LV_SPEECH_VENV="$LV_VENVS/speech"
# wyoming-satellite, whose pins clash with the other two (tests/test_satellite.py).
LV_SATELLITE_VENV="$LV_VENVS/satellite"
export LV_HA_VENV LV_SPEECH_VENV LV_SATELLITE_VENV

# Run a command in the environment: directly, or inside the sid root.
lv_run() {
    if [ "$LV_MODE" = native ]; then
        (cd "$LV_PROJECT" && env PATH="$LV_HA_VENV/bin:$PATH" "$@")
        return
    fi
    local -a pass=(HOME=/root LANG=C.UTF-8 "TERM=${TERM:-dumb}"
        "PATH=$LV_HA_VENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        LV_MODE=root "LV_PYTHON=$LV_PYTHON" "LV_HA_VENV=$LV_HA_VENV" "LV_SPEECH_VENV=$LV_SPEECH_VENV"
        "LV_SATELLITE_VENV=$LV_SATELLITE_VENV"
        SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
        PIP_CERT=/etc/ssl/certs/ca-certificates.crt)
    local name
    for name in $(compgen -e); do
        case $name in
            PIP_CERT | PIP_FIND_LINKS) ;;
            CI | PIP_* | LOCAL_VOICE_* | http_proxy | https_proxy | no_proxy | HTTP_PROXY | HTTPS_PROXY | NO_PROXY)
                pass+=("$name=${!name}") ;;
        esac
    done
    # setpriv: the command gets SIGTERM when this shell dies, even by SIGKILL,
    # instead of living on in the root with what it started.
    setpriv --pdeathsig TERM -- unshare --mount --propagation private -- /bin/bash -euo pipefail -c '
        root=$1 project=$2
        shift 2
        mount --rbind /dev "$root/dev"
        mount -t proc proc "$root/proc"
        mkdir -p "$root$project"
        mount --bind "$project" "$root$project"
        cp /etc/resolv.conf "$root/etc/resolv.conf"
        if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
            cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
        fi
        exec chroot "$root" /usr/bin/env -i "$@"
    ' lv-run "$LV_ROOT" "$LV_PROJECT" "${pass[@]}" /bin/bash -c 'cd "$0" && exec "$@"' "$LV_PROJECT" "$@"
}
