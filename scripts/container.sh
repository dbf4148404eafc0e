#!/usr/bin/env bash
# Build the Bento and an OCI image of the service (bentoml containerize), run it, check it answers on
# loopback (/readyz, one /predict, one /saliency), then stop and remove the container. Times every phase.
set -Eeuo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/container.sh [options]

Builds the Bento (`bentoml build`) and an OCI image (`bentoml containerize`), runs the image with its
port published on 127.0.0.1 only, checks GET /readyz, one POST /predict and one POST /saliency, then
stops and removes the container. Prints the time of every phase.

Engine: Docker when `docker info` works (a running Docker engine), otherwise podman (installed with
apt-get when missing, and run with a containers.conf that works on hosts without systemd cgroups:
runc, cgroupfs, fixed ulimits). Base image: by default a Debian bookworm image made with debootstrap
(python3, pip, venv, the host's CA certificates so pip works behind a TLS-inspecting proxy), cached
as an image and as a tarball, so only the first run pays for it (~1 min).

Options:
  --model TAG        model in the BentoML store to pack (default: $BINDCNN_MODEL or ctcf:latest)
  --smoke            train a tiny model (2000 synthetic sequences, 2 epochs) into a private BentoML home
                     under the work dir and pack that one (what CI uses; needs no model of yours)
  --gpu              the GPU variant: builds from bentofile.gpu.yaml (onnxruntime-gpu[cuda,cudnn]: CUDA 13
                     + cuDNN 9 as pip wheels, no CUDA base image; needs only the host driver) and runs the container with the GPUs (podman: --device nvidia.com/gpu=all, docker:
                     --gpus all); checks that the predictor reports CUDAExecutionProvider when a GPU
                     is visible on the host (nvidia-smi), otherwise builds and checks on CPU
  --build-only       build the Bento and the image, do not run it
  --engine E         docker or podman (default: auto)
  --base-image IMG   use this base image instead of the debootstrap one (e.g. python:3.11-slim where
                     Docker Hub is reachable); it must have python3.11 and pip
  --rebuild-base     rebuild the debootstrap base image even if cached
  --port N           host port on 127.0.0.1 (default: a free one)
  --keep             leave the container running (prints how to stop it) and keep the work dir
  --work DIR         work dir (default: a new temp dir)
  --timings FILE     also append the phase timings to FILE (markdown table rows)
  -h, --help         this help

Environment: BINDCNN_CACHE (default ~/.cache/bindcnn) holds the base-image tarball and
containers.conf; BENTOML_HOME as usual.

Exit codes: 0 all checks passed; 1 a build step or a check failed; 2 bad usage or a missing
prerequisite (no model, cannot install podman).
EOF
}

die() { echo "container.sh: error: $*" >&2; exit "${2:-1}"; }
say() { echo "[container.sh $(date +%H:%M:%S)] $*" >&2; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
BENTOML="${BENTOML:-$ROOT/.venv/bin/bentoml}"
MODEL="${BINDCNN_MODEL:-ctcf:latest}"
SMOKE=0 GPU=0 BUILD_ONLY=0 ENGINE=auto BASE_IMAGE="" REBUILD_BASE=0 PORT="" KEEP=0 WORK="" TIMINGS=""
CACHE="${BINDCNN_CACHE:-$HOME/.cache/bindcnn}"
BASE_RECIPE=1  # bump when the base image recipe below changes

while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) MODEL="${2:?--model needs a tag}"; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    --gpu) GPU=1; shift ;;
    --build-only) BUILD_ONLY=1; shift ;;
    --engine) ENGINE="${2:?--engine needs docker or podman}"; shift 2 ;;
    --base-image) BASE_IMAGE="${2:?--base-image needs an image}"; shift 2 ;;
    --rebuild-base) REBUILD_BASE=1; shift ;;
    --port) PORT="${2:?--port needs a number}"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --work) WORK="${2:?--work needs a dir}"; shift 2 ;;
    --timings) TIMINGS="${2:?--timings needs a file}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "container.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$ENGINE" =~ ^(auto|docker|podman)$ ]] || die "--engine must be docker or podman" 2
[[ -z "$PORT" || "$PORT" =~ ^[0-9]+$ ]] || die "--port must be a number" 2
[[ -x "$PY" ]] || die "$PY not found: run 'make install' first (or set PYTHON)" 2

# ---- phase timing ------------------------------------------------------------------------------
declare -a PHASES=()
T0=$(date +%s.%N); PHASE_T0=$T0; PHASE=""
phase() {  # phase NAME: close the running phase, start a new one
  local now; now=$(date +%s.%N)
  if [[ -n "$PHASE" ]]; then PHASES+=("$PHASE|$(awk -v a="$PHASE_T0" -v b="$now" 'BEGIN{printf "%.1f", b-a}')"); fi
  PHASE="$1"; PHASE_T0=$now
  [[ -n "$PHASE" ]] && say "== $PHASE"
  return 0
}
report() {
  phase ""
  local total; total=$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
  echo "" >&2; echo "| phase | seconds |" >&2; echo "| --- | --- |" >&2
  for p in "${PHASES[@]}"; do echo "| ${p%%|*} | ${p##*|} |" >&2; done
  echo "| total | $total |" >&2
  if [[ -n "$TIMINGS" ]]; then
    { for p in "${PHASES[@]}"; do echo "| ${p%%|*} | ${p##*|} |"; done; echo "| total | $total |"; } >> "$TIMINGS"
  fi
}

CONTAINER="" IMAGE=""
cleanup() {
  local rc=$?
  if [[ -n "$CONTAINER" && $KEEP -eq 0 ]]; then
    "$ENGINE" rm -f "$CONTAINER" >/dev/null 2>&1 || true
  fi
  if [[ -n "${OWN_WORK:-}" && $KEEP -eq 0 ]]; then rm -rf "$WORK"; fi
  [[ ${#PHASES[@]} -gt 0 || -n "$PHASE" ]] && report
  if [[ $rc -eq 0 ]]; then say "OK"; else say "FAILED (exit $rc)"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z "$WORK" ]]; then WORK="$(mktemp -d "${TMPDIR:-/tmp}/bindcnn-container.XXXXXX")"; OWN_WORK=1; fi
mkdir -p "$WORK" "$CACHE"
cd "$ROOT"

# ---- engine ------------------------------------------------------------------------------------
phase "engine"
if [[ "$ENGINE" == auto ]]; then
  if command -v docker >/dev/null && timeout 20 docker info >/dev/null 2>&1; then ENGINE=docker; else ENGINE=podman; fi
fi
if [[ "$ENGINE" == podman ]]; then
  need=()
  for tool in podman buildah runc; do command -v "$tool" >/dev/null || need+=("$tool"); done
  [[ -z "$BASE_IMAGE" ]] && ! command -v debootstrap >/dev/null && need+=(debootstrap)
  if [[ ${#need[@]} -gt 0 ]]; then
    command -v apt-get >/dev/null || die "missing ${need[*]} and no apt-get: install them" 2
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    say "installing ${need[*]} with apt-get"
    $SUDO apt-get install -y -q "${need[@]}" >"$WORK/apt.log" 2>&1 \
      || { $SUDO apt-get update -q >>"$WORK/apt.log" 2>&1 && $SUDO apt-get install -y -q "${need[@]}" >>"$WORK/apt.log" 2>&1; } \
      || { tail -20 "$WORK/apt.log" >&2; die "apt-get install ${need[*]} failed (log: $WORK/apt.log)" 2; }
  fi
  # Default podman fails here (crun setrlimit; cgroups v1/hybrid without systemd): use runc + cgroupfs.
  if [[ -z "${CONTAINERS_CONF:-}" ]]; then
    export CONTAINERS_CONF="$CACHE/containers.conf"
    cat > "$CONTAINERS_CONF" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=1000:1000"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
EOF
  fi
  podman info >/dev/null 2>&1 || die "podman does not work here (CONTAINERS_CONF=$CONTAINERS_CONF): $(podman info 2>&1 | tail -3)" 2
fi
say "engine: $ENGINE $("$ENGINE" --version 2>/dev/null | head -1)"

# ---- base image --------------------------------------------------------------------------------
if [[ -z "$BASE_IMAGE" ]]; then
  phase "base image"
  CA=/etc/ssl/certs/ca-certificates.crt
  [[ -f "$CA" ]] || die "$CA not found: the base image copies the host's CA bundle" 2
  KEY=$( { echo "recipe $BASE_RECIPE"; cat "$CA"; } | sha256sum | cut -c1-12)
  BASE_IMAGE="localhost/bindcnn-base:bookworm-$KEY"
  TARBALL="$CACHE/base-bookworm-$KEY.tar"
  if [[ $REBUILD_BASE -eq 0 ]] && "$ENGINE" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    say "base image $BASE_IMAGE cached"
  else
    if [[ $REBUILD_BASE -eq 1 || ! -s "$TARBALL" ]]; then
      [[ $(id -u) -eq 0 ]] || die "debootstrap needs root (or pass --base-image IMG)" 2
      ROOTFS="$WORK/rootfs"
      say "debootstrap bookworm -> $ROOTFS (about a minute)"
      debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
        bookworm "$ROOTFS" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log" >&2; die "debootstrap failed (log: $WORK/debootstrap.log)"; }
      # The host's CA bundle: outbound TLS may go through a proxy whose CA only the host trusts.
      cp "$CA" "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
      # BentoML's Dockerfile runs `pip install uv` with the system pip (PEP 668 would refuse).
      rm -f "$ROOTFS"/usr/lib/python3*/EXTERNALLY-MANAGED
      rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
      tar -C "$ROOTFS" -cf "$TARBALL.part" . && mv "$TARBALL.part" "$TARBALL"
      rm -rf "$ROOTFS"
    else
      say "base tarball cached: $TARBALL"
    fi
    "$ENGINE" import -q \
      --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
      --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
      --change 'ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt' \
      --change 'ENV UV_NATIVE_TLS=1' \
      --change 'CMD ["/bin/bash"]' \
      "$TARBALL" "$BASE_IMAGE" >/dev/null
    say "base image $BASE_IMAGE imported"
  fi
fi

# ---- model -------------------------------------------------------------------------------------
phase "model"
if [[ $SMOKE -eq 1 ]]; then
  export BENTOML_HOME="$WORK/bentoml_home"
  MODEL="ctcfsmoke:latest"
  export TF_CPP_MIN_LOG_LEVEL=3
  "$PY" -m training synthetic --out "$WORK/smoke.h5" --n 2000 --seed 1 2>>"$WORK/train.log" \
    || { tail -20 "$WORK/train.log" >&2; die "synthetic data failed"; }
  "$PY" -m training train --data "$WORK/smoke.h5" --name ctcfsmoke --models "$WORK/models" --epochs 2 \
    2>>"$WORK/train.log" || { tail -20 "$WORK/train.log" >&2; die "training the smoke model failed"; }
  say "smoke model trained and registered in $BENTOML_HOME"
fi
EXACT=$("$PY" -c 'import sys, bentoml; print(bentoml.models.get(sys.argv[1]).tag)' "$MODEL" 2>/dev/null) \
  || die "model $MODEL is not in the BentoML store (${BENTOML_HOME:-~/bentoml}): run 'make register', or pass --smoke" 2
# The exact tag: `bentoml build` packs it, and the container must be told which model it packed (the
# service reads BINDCNN_MODEL, default ctcf:latest, when it starts).
export BINDCNN_MODEL="$EXACT"
say "model: $MODEL = $EXACT"

# ---- bentoml build -----------------------------------------------------------------------------
phase "bentoml build"
# The repo's bentofile (bentofile.gpu.yaml for --gpu), with docker.base_image set for this build only.
SRC_BENTOFILE=bentofile.yaml; [[ $GPU -eq 1 ]] && SRC_BENTOFILE=bentofile.gpu.yaml
[[ -f "$SRC_BENTOFILE" ]] || die "no $SRC_BENTOFILE in $ROOT" 2
"$PY" - "$SRC_BENTOFILE" "$WORK/bentofile.yaml" "$BASE_IMAGE" <<'EOF'
import sys, yaml
src, out, base = sys.argv[1:4]
cfg = yaml.safe_load(open(src)) or {}
docker = cfg.get("docker") or {}
for key in ("distro", "python_version", "cuda_version", "system_packages"):
    docker.pop(key, None)  # ignored (with a warning) once base_image is set
docker["base_image"] = base
cfg["docker"] = docker
yaml.safe_dump(cfg, open(out, "w"), sort_keys=False)
EOF
"$BENTOML" build -f "$WORK/bentofile.yaml" --output tag . >"$WORK/build.log" 2>&1 \
  || { tail -30 "$WORK/build.log" >&2; die "bentoml build failed (log: $WORK/build.log)"; }
BENTO=$(grep -Eo '__tag__:[^ ]+' "$WORK/build.log" | tail -1 | sed 's/__tag__://')
[[ -n "$BENTO" ]] || BENTO=$(grep -Eo 'Bento\(tag="[^"]+"' "$WORK/build.log" | tail -1 | sed 's/.*tag="//;s/"//')
[[ -n "$BENTO" ]] || { tail -20 "$WORK/build.log" >&2; die "cannot find the Bento tag in the build output"; }
say "bento: $BENTO"

# ---- containerize ------------------------------------------------------------------------------
phase "containerize"
IMAGE="bindcnn:${BENTO#*:}"; [[ $GPU -eq 1 ]] && IMAGE="bindcnn-gpu:${BENTO#*:}"
OLD_ID=""
if [[ $SMOKE -eq 1 ]]; then  # one smoke image, replaced by each run (its layers stay the next run's cache)
  IMAGE="bindcnn-smoke:latest"; [[ $GPU -eq 1 ]] && IMAGE="bindcnn-gpu-smoke:latest"
  OLD_ID=$("$ENGINE" image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
fi
"$BENTOML" containerize --backend "$ENGINE" -t "$IMAGE" "$BENTO" >"$WORK/containerize.log" 2>&1 \
  || { tail -40 "$WORK/containerize.log" >&2; die "bentoml containerize failed (log: $WORK/containerize.log)"; }
NEW_ID=$("$ENGINE" image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
if [[ -n "$OLD_ID" && "$OLD_ID" != "$NEW_ID" ]]; then "$ENGINE" rmi "$OLD_ID" >/dev/null 2>&1 || true; fi
say "image: $IMAGE ($("$ENGINE" image inspect --format '{{.Size}}' "$IMAGE" 2>/dev/null | awk '{printf "%.0f MB", $1/1e6}'))"
[[ $BUILD_ONLY -eq 1 ]] && exit 0

# ---- run + checks ------------------------------------------------------------------------------
phase "start"
[[ -n "$PORT" ]] || PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
CONTAINER="bindcnn-check-$$"
RUN_ARGS=(-d --name "$CONTAINER" -p "127.0.0.1:$PORT:3000" -e "BINDCNN_MODEL=$BINDCNN_MODEL")
if [[ $GPU -eq 1 ]] && command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  if [[ "$ENGINE" == docker ]]; then RUN_ARGS+=(--gpus all); else RUN_ARGS+=(--device nvidia.com/gpu=all); fi
  HAVE_GPU=1
else
  HAVE_GPU=0
fi
"$ENGINE" run "${RUN_ARGS[@]}" "$IMAGE" >/dev/null || die "$ENGINE run failed"
URL="http://127.0.0.1:$PORT"
ready=0
for _ in $(seq 1 240); do
  if curl -fsS -m 2 "$URL/readyz" >/dev/null 2>&1; then ready=1; break; fi
  [[ "$("$ENGINE" inspect -f '{{.State.Running}}' "$CONTAINER" 2>/dev/null)" == true ]] || break
  sleep 0.5
done
if [[ $ready -ne 1 ]]; then "$ENGINE" logs "$CONTAINER" 2>&1 | tail -40 >&2; die "container never became ready on $URL/readyz"; fi
say "ready on $URL"

phase "checks"
"$PY" - "$URL" "$HAVE_GPU" "$BINDCNN_MODEL" <<'EOF' || { "$ENGINE" logs "$CONTAINER" 2>&1 | tail -40 >&2; die "endpoint checks failed"; }
import json, math, sys, urllib.request
url, gpu, tag = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
def call(path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        assert r.status == 200, (path, r.status)
        return json.loads(r.read())
seqs = ["ACGT" * 50, "TTGACCAGCAGGGGGCGCTA" * 10]
out = call("/predict", {"sequences": seqs})
assert len(out["probability"]) == 2 and all(0 <= p <= 1 for p in out["probability"]), out
assert all(abs(1 / (1 + math.exp(-z)) - p) < 1e-5 for p, z in zip(out["probability"], out["logit"])), out
print(f"  /predict  -> {out}", file=sys.stderr)
sal = call("/saliency", {"sequences": seqs[1:]})["scores"]
assert len(sal) == 1 and len(sal[0]) == 200 and len(sal[0][0]) == 4, "saliency shape"
print(f"  /saliency -> (1, 200, 4) scores, sum |s| = {sum(abs(v) for row in sal[0] for v in row):.4g}", file=sys.stderr)
info = call("/model")
assert info["tag"] == tag, (info["tag"], tag)
providers = info["predictor"]["providers"]
print(f"  /model    -> {info['tag']} on {providers}; tensorflow in predictor: {info['tensorflow_loaded']}", file=sys.stderr)
if gpu:
    assert providers[0] == "CUDAExecutionProvider", f"a GPU is visible but the predictor runs on {providers}"
EOF
say "checks passed"
if [[ $KEEP -eq 1 ]]; then say "container $CONTAINER kept on $URL; stop it with: $ENGINE rm -f $CONTAINER"; fi
