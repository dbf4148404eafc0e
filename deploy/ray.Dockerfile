# The image of deploy/rayjob.yaml: the deployment image (docs/serving.md "Bento and container images": Python, ONNX Runtime,
# pyfaidx/pyBigWig/cyvcf2) plus Ray (the Ray Data engine, and the dashboard the RayJob submitter talks to), the
# `bindcnn` command and the exported model at /opt/bindcnn/models/ctcf (the same path on every pod).
#
#   .venv/bin/bentoml build && .venv/bin/bentoml containerize bindcnn:latest -t bindcnn:latest
#   docker build -f deploy/ray.Dockerfile -t bindcnn-ray:latest .          # from the repository root
#   (GPU workers: --build-arg BASE=<the image of bentofile.gpu.yaml> -t bindcnn-ray-gpu:latest)
#
# Ray's version here must equal rayVersion in deploy/rayjob.yaml and the [distributed] extra (ray[data] 2.60).
ARG BASE=bindcnn:latest
FROM ${BASE}
USER root
# KubeRay's health probes run wget in the Ray containers.
RUN (command -v wget || (apt-get update && apt-get install -y --no-install-recommends wget \
        && rm -rf /var/lib/apt/lists/*)) \
    && python3 -m pip install --no-cache-dir "ray[default,data]==2.60.0"
COPY pyproject.toml README.md /opt/bindcnn/
COPY serving/ /opt/bindcnn/serving/
COPY training/ /opt/bindcnn/training/
COPY models/ctcf/ /opt/bindcnn/models/ctcf/
# --no-deps: the base image already holds the predictor's packages (bentofile.yaml pins them as requirements.lock).
RUN python3 -m pip install --no-cache-dir --no-deps /opt/bindcnn
WORKDIR /opt/bindcnn
