# The code location's image: the pipeline on DuckDB 1.4.4 with DuckLake, PostgreSQL and SQLite extensions from
# PyPI, Dagster's PostgreSQL storage and Kubernetes launcher. Served as a gRPC code server (port 3030); the same
# image runs each run's pod. Configuration comes from the environment (see the README's "Scaling out").
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OUTBOUND_DATA_DIR=/opt/outbound/data OUTBOUND_DUCKDB_PATH=/var/lib/outbound/outbound.duckdb DAGSTER_HOME=/opt/dagster/home
WORKDIR /opt/outbound

COPY pyproject.toml README.md ./
COPY outbound_pipeline ./outbound_pipeline
COPY deploy/lake-requirements.txt deploy/dagster-postgres.yaml ./deploy/
RUN pip install . -r deploy/lake-requirements.txt "dagster-k8s>=0.29,<0.30" \
    && mkdir -p /var/lib/outbound "$DAGSTER_HOME" \
    && cp deploy/dagster-postgres.yaml "$DAGSTER_HOME/dagster.yaml" \
    && useradd --system --uid 10001 --home-dir /var/lib/outbound outbound \
    && chown -R outbound /var/lib/outbound "$DAGSTER_HOME"

# Campaign files, lead lists and the voice live in data/; mount your own over /opt/outbound/data in production.
COPY data ./data

USER outbound
EXPOSE 3030
CMD ["dagster", "api", "grpc", "--module-name", "outbound_pipeline.definitions", "--host", "0.0.0.0", "--port", "3030"]
