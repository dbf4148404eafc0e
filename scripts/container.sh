#!/usr/bin/env bash
# Build the Bentos and OCI images of the predictor (no TensorFlow) and the explainer (bentoml containerize), run
# them as a pair, check they answer on loopback (/readyz, /predict, /saliency through the explainer URL, /model),
# then stop and remove the containers. Times every phase.
set -Eeuo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/container.sh [options]

Builds two Bentos (`bentoml build`) and OCI images (`bentoml containerize`): the predictor
(bentofile.yaml, no TensorFlow) and the explainer (bentofile.explainer.yaml, TensorFlow). Runs them as a
pair sharing one network namespace (the predictor reaches the explainer through BINDCNN_EXPLAINER_URL),
the predictor's port published on 127.0.0.1 only; checks that the predictor image has no TensorFlow,
GET /readyz, one POST /predict, one POST /saliency (through the explainer) and /model; then stops and
removes the containers. Prints the time of every phase and each image's size. Images are tagged
bindcnn:latest and bindcnn-explainer:latest (bindcnn-smoke:latest, ... with --smoke); each run replaces
the image its tag named before, so repeated runs do not pile up multi-GB images.

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
  --build-only       build the Bentos and the images, do not run them
  --predictor-only   build (and run) the predictor image alone: /saliency must answer 503 naming
                     BINDCNN_EXPLAINER_URL
  --explainer-only   build (and run) the explainer image alone: checks its own /saliency
  --engine E         docker or podman (default: auto)
  --base-image IMG   use this base image instead of the debootstrap one (e.g. python:3.11-slim where
                     Docker Hub is reachable); it must have python3.11 and pip
  --rebuild-base     rebuild the debootstrap base image even if cached
  --port N           host port on 127.0.0.1 (default: a free one)
  --keep             leave the containers running (prints how to stop them) and keep the work dir
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
SMOKE=0 GPU=0 BUILD_ONLY=0 PREDICTOR_ONLY=0 EXPLAINER_ONLY=0 ENGINE=auto BASE_IMAGE="" REBUILD_BASE=0 PORT="" KEEP=0 WORK="" TIMINGS=""
CACHE="${BINDCNN_CACHE:-$HOME/.cache/bindcnn}"
BASE_RECIPE=1  # bump when the base image recipe below changes

while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) MODEL="${2:?--model needs a tag}"; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    --gpu) GPU=1; shift ;;
    --build-only) BUILD_ONLY=1; shift ;;
    --predictor-only) PREDICTOR_ONLY=1; shift ;;
    --explainer-only) EXPLAINER_ONLY=1; shift ;;
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
[[ $PREDICTOR_ONLY -eq 1 && $EXPLAINER_ONLY -eq 1 ]] && die "--predictor-only and --explainer-only exclude each other" 2
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

CONTAINER="" EXPLAINER_CONTAINER="" IMAGE=""
cleanup() {
  local rc=$?
  if [[ $KEEP -eq 0 ]]; then  # the predictor first: it lives in the explainer's network namespace
    for c in "$CONTAINER" "$EXPLAINER_CONTAINER"; do [[ -n "$c" ]] && "$ENGINE" rm -f "$c" >/dev/null 2>&1; done
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

# ---- bentoml build + containerize ----------------------------------------------------------------
# build_image ROLE SRC_BENTOFILE IMAGE: the repo's bentofile with docker.base_image set for this build only,
# `bentoml build`, then `bentoml containerize -t IMAGE` (IMAGE empty: name:version of the Bento). Sets BUILT_IMAGE.
build_image() {
  local role=$1 src=$2 image=$3 bentofile="$WORK/bentofile.$1.yaml" bento old_id new_id
  phase "bentoml build ($role)"
  [[ -f "$src" ]] || die "no $src in $ROOT" 2
  "$PY" - "$src" "$bentofile" "$BASE_IMAGE" <<'EOF'
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
  "$BENTOML" build -f "$bentofile" --output tag . >"$WORK/build.$role.log" 2>&1 \
    || { tail -30 "$WORK/build.$role.log" >&2; die "bentoml build ($role) failed (log: $WORK/build.$role.log)"; }
  bento=$(grep -Eo '__tag__:[^ ]+' "$WORK/build.$role.log" | tail -1 | sed 's/__tag__://')
  [[ -n "$bento" ]] || bento=$(grep -Eo 'Bento\(tag="[^"]+"' "$WORK/build.$role.log" | tail -1 | sed 's/.*tag="//;s/"//')
  [[ -n "$bento" ]] || { tail -20 "$WORK/build.$role.log" >&2; die "cannot find the Bento tag in the build output"; }
  say "bento ($role): $bento"
  phase "containerize ($role)"
  if [[ -z "$image" ]]; then
    image="${bento%%:*}:latest"; [[ $GPU -eq 1 && $role == predictor ]] && image="bindcnn-gpu:latest"
  fi
  # Each run replaces the image its tag named before (its layers stay the next run's cache): repeated runs
  # do not pile up multi-GB images. The Bento's own version is in the image's labels and /model.
  old_id=$("$ENGINE" image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
  "$BENTOML" containerize --backend "$ENGINE" -t "$image" "$bento" >"$WORK/containerize.$role.log" 2>&1 \
    || { tail -40 "$WORK/containerize.$role.log" >&2; die "bentoml containerize ($role) failed (log: $WORK/containerize.$role.log)"; }
  new_id=$("$ENGINE" image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
  if [[ -n "$old_id" && "$old_id" != "$new_id" ]]; then "$ENGINE" rmi "$old_id" >/dev/null 2>&1 || true; fi
  say "image ($role): $image ($("$ENGINE" image inspect --format '{{.Size}}' "$image" 2>/dev/null | awk '{printf "%.0f MB", $1/1e6}'))"
  BUILT_IMAGE=$image
}

SRC_BENTOFILE=bentofile.yaml; [[ $GPU -eq 1 ]] && SRC_BENTOFILE=bentofile.gpu.yaml
IMAGE="" EXPLAINER_IMAGE=""
if [[ $SMOKE -eq 1 ]]; then
  IMAGE="bindcnn-smoke:latest"; [[ $GPU -eq 1 ]] && IMAGE="bindcnn-gpu-smoke:latest"
  EXPLAINER_IMAGE="bindcnn-explainer-smoke:latest"
fi
if [[ $EXPLAINER_ONLY -eq 0 ]]; then
  build_image predictor "$SRC_BENTOFILE" "$IMAGE"; IMAGE=$BUILT_IMAGE
fi
if [[ $PREDICTOR_ONLY -eq 0 ]]; then
  build_image explainer bentofile.explainer.yaml "$EXPLAINER_IMAGE"; EXPLAINER_IMAGE=$BUILT_IMAGE
fi
[[ $BUILD_ONLY -eq 1 ]] && exit 0

# ---- run + checks ------------------------------------------------------------------------------
phase "start"
[[ -n "$PORT" ]] || PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
EXPLAINER_PORT=3001  # the explainer's port inside the pair's shared network namespace
if [[ $GPU -eq 1 ]] && command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then HAVE_GPU=1; else HAVE_GPU=0; fi
wait_ready() {  # wait_ready CONTAINER URL WHAT
  local _
  for _ in $(seq 1 240); do
    if curl -fsS -m 2 "$2/readyz" >/dev/null 2>&1; then return 0; fi
    [[ "$("$ENGINE" inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" == true ]] || break
    sleep 0.5
  done
  "$ENGINE" logs "$1" 2>&1 | tail -40 >&2
  die "$3 never became ready on $2/readyz"
}
ROLE=pair; [[ $PREDICTOR_ONLY -eq 1 ]] && ROLE=predictor; [[ $EXPLAINER_ONLY -eq 1 ]] && ROLE=explainer
CONTAINER="bindcnn-check-$$"
if [[ $ROLE == explainer ]]; then
  "$ENGINE" run -d --name "$CONTAINER" -p "127.0.0.1:$PORT:3000" -e "BINDCNN_MODEL=$BINDCNN_MODEL" \
    "$EXPLAINER_IMAGE" >/dev/null || die "$ENGINE run (explainer) failed"
  wait_ready "$CONTAINER" "$URL" "the explainer"
else
  RUN_ARGS=(-d --name "$CONTAINER" -e "BINDCNN_MODEL=$BINDCNN_MODEL")
  if [[ $HAVE_GPU -eq 1 ]]; then
    if [[ "$ENGINE" == docker ]]; then RUN_ARGS+=(--gpus all); else RUN_ARGS+=(--device nvidia.com/gpu=all); fi
  fi
  if [[ $ROLE == pair ]]; then
    # Two containers sharing one network namespace, like two containers of a pod: the explainer (started
    # first, so it holds the namespace and the published port) on $EXPLAINER_PORT, the predictor on 3000.
    EXPLAINER_CONTAINER="bindcnn-check-explainer-$$"
    "$ENGINE" run -d --name "$EXPLAINER_CONTAINER" -p "127.0.0.1:$PORT:3000" -e "PORT=$EXPLAINER_PORT" \
      -e "BINDCNN_MODEL=$BINDCNN_MODEL" "$EXPLAINER_IMAGE" >/dev/null || die "$ENGINE run (explainer) failed"
    RUN_ARGS+=(--network "container:$EXPLAINER_CONTAINER" -e "BINDCNN_EXPLAINER_URL=http://127.0.0.1:$EXPLAINER_PORT")
  else
    RUN_ARGS+=(-p "127.0.0.1:$PORT:3000")
  fi
  "$ENGINE" run "${RUN_ARGS[@]}" "$IMAGE" >/dev/null || die "$ENGINE run (predictor) failed"
  wait_ready "$CONTAINER" "$URL" "the predictor"
  if [[ $ROLE == pair ]]; then  # a predictor is ready without its URL explainer: wait until /model reaches it
    for _ in $(seq 1 240); do
      curl -fsS -m 10 "$URL/model" 2>/dev/null | "$PY" -c 'import json, sys; sys.exit("error" in json.load(sys.stdin)["explainer"])' \
        && break
      [[ "$("$ENGINE" inspect -f '{{.State.Running}}' "$EXPLAINER_CONTAINER" 2>/dev/null)" == true ]] \
        || { "$ENGINE" logs "$EXPLAINER_CONTAINER" 2>&1 | tail -40 >&2; die "the explainer container stopped"; }
      sleep 0.5
    done
  fi
  "$ENGINE" run --rm --entrypoint /bin/sh "$IMAGE" -c \
    'for p in /app/.venv/bin/python python3; do command -v $p >/dev/null && exec $p -c "import importlib.util as u, sys; sys.exit(u.find_spec(\"tensorflow\") is not None)"; done; exit 2' \
    >/dev/null 2>&1 || die "the predictor image $IMAGE has TensorFlow installed"
  say "the predictor image has no TensorFlow"
fi
say "ready on $URL"

phase "checks"
"$PY" - "$URL" "$HAVE_GPU" "$BINDCNN_MODEL" "$ROLE" <<'EOF' || { "$ENGINE" logs "$CONTAINER" 2>&1 | tail -40 >&2; die "endpoint checks failed"; }
import json, math, sys, urllib.error, urllib.request
url, gpu, tag, role = sys.argv[1], sys.argv[2] == "1", sys.argv[3], sys.argv[4]
def call(path, body=None, status=200):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            got, text = r.status, r.read()
    except urllib.error.HTTPError as exc:
        got, text = exc.code, exc.read()
    assert got == status, (path, got, text[:300])
    return json.loads(text)
seqs = ["ACGT" * 50, "TTGACCAGCAGGGGGCGCTA" * 10]
if role == "explainer":
    sal = call("/saliency", {"sequences": seqs[1:]})
    assert len(sal) == 1 and len(sal[0]) == 200 and len(sal[0][0]) == 4, "saliency shape"
    print("  explainer /saliency -> (1, 200, 4) scores", file=sys.stderr)
    sys.exit(0)
out = call("/predict", {"sequences": seqs})
assert len(out["probability"]) == 2 and all(0 <= p <= 1 for p in out["probability"]), out
assert all(abs(1 / (1 + math.exp(-z)) - p) < 1e-5 for p, z in zip(out["probability"], out["logit"])), out
print(f"  /predict  -> {out}", file=sys.stderr)
if role == "pair":
    sal = call("/saliency", {"sequences": seqs[1:]})["scores"]
    assert len(sal) == 1 and len(sal[0]) == 200 and len(sal[0][0]) == 4, "saliency shape"
    print(f"  /saliency -> (1, 200, 4) scores from the explainer container, sum |s| = "
          f"{sum(abs(v) for row in sal[0] for v in row):.4g}", file=sys.stderr)
else:
    err = call("/saliency", {"sequences": seqs[1:]}, status=503)
    assert "BINDCNN_EXPLAINER_URL" in err["error"], err
    print("  /saliency -> 503 naming BINDCNN_EXPLAINER_URL (no explainer)", file=sys.stderr)
info = call("/model")
assert info["tag"] == tag, (info["tag"], tag)
assert info["tensorflow_loaded"] is False, "TensorFlow loaded in the predictor"
providers = info["predictor"]["providers"]
print(f"  /model    -> {info['tag']} on {providers}; tensorflow in predictor: {info['tensorflow_loaded']}; "
      f"explainer: {info['explainer'].get('mode')} {info['explainer'].get('url') or ''}", file=sys.stderr)
if gpu:
    assert providers[0] == "CUDAExecutionProvider", f"a GPU is visible but the predictor runs on {providers}"
EOF
say "checks passed"
if [[ $KEEP -eq 1 ]]; then say "container(s) $CONTAINER $EXPLAINER_CONTAINER kept on $URL; stop with: $ENGINE rm -f $CONTAINER $EXPLAINER_CONTAINER"; fi
