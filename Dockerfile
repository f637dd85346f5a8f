# Vitrine server image: the online server only (`pip install .`: no implicit, scipy or pyarrow),
# as a non-root user, in a virtual environment copied out of a build stage.
#   docker build -t vitrine .                                  # the server
#   docker build -t vitrine-train --build-arg EXTRAS=train .    # the same, plus the trainer
#   docker compose up                                          # with Redis: compose.yaml
# Without REDIS_URL the server starts its embedded Redis under /srv/data (one machine only).
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ARG EXTRAS=""
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/vitrine
WORKDIR /src
COPY pyproject.toml README.md ./
COPY vitrine ./vitrine
COPY models ./models
COPY server ./server
COPY training ./training
COPY loadtest ./loadtest
RUN /opt/vitrine/bin/pip install --no-cache-dir ".${EXTRAS:+[$EXTRAS]}"

FROM python:${PYTHON_VERSION}-slim
ENV PATH=/opt/vitrine/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OPENBLAS_NUM_THREADS=1 \
    OMP_NUM_THREADS=1 \
    VITRINE_SERVER_HOST=0.0.0.0 \
    VITRINE_SERVER_PORT=8080 \
    VITRINE_MODEL_STORE=/srv/models \
    VITRINE_DATA_DIR=/srv/data
RUN useradd --system --uid 10001 --home-dir /srv --shell /usr/sbin/nologin vitrine \
    && mkdir -p /srv/models /srv/data \
    && chown vitrine /srv/models /srv/data
COPY --from=build /opt/vitrine /opt/vitrine
USER 10001
WORKDIR /srv
EXPOSE 8080
VOLUME ["/srv/models", "/srv/data"]
# Liveness: the process answers (readiness, model and Redis, is /readyz: for the load balancer).
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('VITRINE_SERVER_PORT', '8080'), timeout=2)"]
CMD ["vitrine", "serve"]
