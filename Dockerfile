# logdrift: the Kafka worker by default; any other `logdrift` command by naming it, e.g.
#   docker run --rm IMAGE simulate --host fluentd
# Configuration is by environment (LOGDRIFT_<SECTION>__<KEY>, see config/logdrift.yaml);
# secrets by environment or by files mounted where the *_file settings point.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# --- build: a virtualenv with logdrift and its runtime dependencies (no dev tools) ---------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/logdrift
WORKDIR /src
COPY pyproject.toml README.md ./
COPY config ./config
COPY connectors ./connectors
COPY detectors ./detectors
COPY streams ./streams
RUN /opt/logdrift/bin/pip install --upgrade pip \
 && /opt/logdrift/bin/pip install . \
 && /opt/logdrift/bin/logdrift --help > /dev/null

# --- runtime: the virtualenv only, as an unprivileged user ----------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 logdrift \
 && useradd --system --uid 10001 --gid logdrift --home-dir /var/lib/logdrift --create-home \
      --shell /usr/sbin/nologin logdrift \
 && mkdir -p /data \
 && chown logdrift:logdrift /data
COPY --from=build /opt/logdrift /opt/logdrift
# In a container the listeners must face the container network (the host publishes ports
# deliberately); logs are JSON lines for the log shipper; state lives in the working folder.
ENV PATH=/opt/logdrift/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LOGDRIFT_OBSERVABILITY__HOST=0.0.0.0 \
    LOGDRIFT_OBSERVABILITY__PORT=9464 \
    LOGDRIFT_OBSERVABILITY__LOG_FORMAT=json \
    LOGDRIFT_FORWARD__HOST=0.0.0.0 \
    LOGDRIFT_STORE=/var/lib/logdrift/logdrift.db \
    LOGDRIFT_KAFKA__DATA_DIR=/var/lib/logdrift/worker-data
WORKDIR /var/lib/logdrift
USER 10001:10001
# 9464: /metrics, /healthz, /readyz; 24224: forward protocol (`logdrift run`, forward-to-kafka)
EXPOSE 9464 24224
# Liveness: the process answers HTTP. (Readiness, /readyz, is for orchestrators and compose.)
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('LOGDRIFT_OBSERVABILITY__PORT', '9464') + '/healthz', timeout=4)"]
ENTRYPOINT ["logdrift"]
CMD ["worker"]
