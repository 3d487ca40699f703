# syntax=docker/dockerfile:1
# One image for every component: `jobqueue api|worker|controller|migrate`.
# Build: docker build -t job-queue:0.1.0 .   (the chart's image tag defaults to its appVersion)

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a virtualenv holding the pinned dependencies and the project
FROM ${PYTHON_IMAGE} AS build
# Set by tools/build-image.sh when the base is a local Debian one that trusts the host's CA bundle.
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/jobqueue
WORKDIR /src
# Dependencies first (job-queue[all]'s: the API, the controller and the built-in handlers), at
# the versions the tests ran with, so a code change reuses this layer.
COPY constraints.txt ./
RUN /opt/jobqueue/bin/pip install --no-deps --requirement constraints.txt
# The sources: .dockerignore lets in only pyproject.toml, README.md and the packages
# (jobqueue/ when present, worker/, controller/).
COPY . ./
RUN /opt/jobqueue/bin/pip install --no-deps --constraint constraints.txt '.[all]' \
 && /opt/jobqueue/bin/pip check \
 && /opt/jobqueue/bin/jobqueue --help >/dev/null \
 # setuptools only built the project. pip stays, so that an image FROM this one can
 # `pip install` its handlers (docs/handlers.md shows the Dockerfile).
 && /opt/jobqueue/bin/python -m pip uninstall --yes --quiet setuptools

# --- runtime: the virtualenv only, run by a non-root user
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="job-queue" \
      org.opencontainers.image.description="PostgreSQL job queue: API, workers and autoscaling controller" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
# The chart runs pods as this uid/gid (podSecurityContext.runAsUser) with a read-only root.
RUN groupadd --system --gid 10001 jobqueue \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/jobqueue --create-home \
      --shell /usr/sbin/nologin jobqueue
COPY --from=build /opt/jobqueue /opt/jobqueue
ENV PATH=/opt/jobqueue/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
USER 10001:10001
WORKDIR /home/jobqueue
# API, worker health+metrics, controller health+metrics.
EXPOSE 8001 9100 9200
ENTRYPOINT ["jobqueue"]
CMD ["--help"]
