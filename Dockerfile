# The Rekindle operator image: kopf + the rekindle command, without TensorFlow.
#   docker build -t ghcr.io/rekindle-dev/operator:0.1.0 .
# The trainer image (with TensorFlow) is trainer_image/Dockerfile.

# --- build: install rekindle[operator] into a virtualenv ---------------------
FROM python:3.11-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/rekindle
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
COPY trainer_image/rekindle_trainer ./trainer_image/rekindle_trainer
# operator/rekindle_operator/trainingjobs.rekindle.dev.yaml links to the chart's CRD (the one
# source of truth): the wheel packs it only if the file it points at is in the build.
COPY charts/rekindle/crds/trainingjobs.rekindle.dev.yaml ./charts/rekindle/crds/
# Only the operator extra: kopf, kubernetes, prometheus-client (no TensorFlow, no Keras).
RUN /opt/rekindle/bin/pip install --no-cache-dir ".[operator]" \
    && /opt/rekindle/bin/python -c "import importlib.util as u; assert u.find_spec('tensorflow') is None" \
    && /opt/rekindle/bin/python -c "import importlib.resources as r; assert r.files('rekindle_operator').joinpath('trainingjobs.rekindle.dev.yaml').is_file()"

# --- run: the virtualenv on a slim base, as a non-root user -------------------
FROM python:3.11-slim-bookworm

LABEL org.opencontainers.image.title="rekindle-operator" \
      org.opencontainers.image.description="Kubernetes operator for fault-tolerant Keras TrainingJobs" \
      org.opencontainers.image.source="https://github.com/rekindle-dev/rekindle" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/rekindle/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

COPY --from=build /opt/rekindle /opt/rekindle

# A numeric, unprivileged user, so that runAsNonRoot can verify it without /etc/passwd.
USER 65532:65532

# 8000: operator metrics (/metrics); 8080: kopf's liveness probe (/healthz).
EXPOSE 8000 8080

ENTRYPOINT ["rekindle", "operator"]
CMD ["--all-namespaces"]
