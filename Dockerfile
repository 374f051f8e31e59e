# syntax=docker/dockerfile:1
# subscription-upserter image.
#   builder: installs the runtime dependencies from requirements.lock (exact versions,
#            hash-checked, prebuilt wheels only) into a virtualenv at /opt/venv; the layer
#            is cached until the lock changes.
#   native:  compiles the hot-path modules with mypyc (scripts/build_native.py) on the
#            same Python release with its compiler, the tools from requirements-build.lock.
#   runtime: the same pinned slim base, the venv and the `service/` package with its
#            compiled modules; no compilers, no pip caches, no dev tools (devstack/, tests/,
#            bench/, helm/ never enter the build context, see .dockerignore). Runs as the
#            fixed non-root UID/GID 10001 and writes nothing outside /tmp, so it runs with
#            a read-only root filesystem.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
# The same Python release and Debian as PYTHON_IMAGE, with gcc and the Python headers.
ARG PYTHON_BUILD_IMAGE=python:3.11.14-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
# Dependencies first: this layer only changes with requirements.lock, the runtime
# dependencies pinned with their hashes (scripts/lock); pip refuses any file that differs.
COPY requirements.lock ./
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --require-hashes --only-binary :all: \
      -r requirements.lock \
 && /opt/venv/bin/pip uninstall --yes pip setuptools \
 && /opt/venv/bin/python -m compileall -q /opt/venv

FROM ${PYTHON_BUILD_IMAGE} AS native
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
COPY requirements.lock requirements-build.lock ./
RUN python -m venv /opt/build \
 && /opt/build/bin/pip install --no-cache-dir --require-hashes --only-binary :all: \
      -r requirements.lock -r requirements-build.lock
COPY scripts/build_native.py scripts/
COPY service/ service/
RUN /opt/build/bin/python scripts/build_native.py /build

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="subscription-upserter" \
      org.opencontainers.image.description="Upserts subscription events from Kafka into HubSpot in batches"
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin app \
 && pip uninstall --yes pip setuptools wheel \
 && rm -rf /root/.cache
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# Code last, with its compiled modules: root-owned and read-only to the service user.
COPY --from=native /build/service/ /app/service/
RUN python -m compileall -q /app/service
USER 10001:10001
# Smoke test, as the service user: fails the build if a dependency is missing or the
# compiled hot path is not the one in use.
RUN python -c "from service.entry import app, native; assert native.describe() == 'compiled', native.describe()" \
 && python -m service --help
EXPOSE 8080
# Exec form: python is PID 1 and receives SIGTERM directly (graceful drain).
ENTRYPOINT ["python", "-m", "service"]
CMD ["run"]
