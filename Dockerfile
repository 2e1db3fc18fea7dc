# ingest worker: slim, non-root, installed from the hashed lock.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/ingest/bin:$PATH \
    INGEST_CONFIG=/app/config/ingest.toml \
    INGEST_STORAGE_DIR=/data \
    INGEST_LOG_FORMAT=json \
    INGEST_STATUS_HOST=0.0.0.0

WORKDIR /src
COPY pyproject.toml requirements.lock README.md ./
COPY docker/install.sh docker/install.sh
COPY ingest ingest
RUN sh docker/install.sh /opt/ingest && rm -rf /src

RUN useradd --system --uid 10001 --home-dir /app --create-home ingest \
    && mkdir -p /data /app/config \
    && chown ingest:ingest /data
COPY --chown=ingest:ingest config/ingest.toml /app/config/ingest.toml

USER ingest
WORKDIR /app
VOLUME ["/data"]
EXPOSE 9108

HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["ingest", "health"]

ENTRYPOINT ["ingest"]
CMD ["run"]
