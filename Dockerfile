# Vitrine server image. Build: docker build -t vitrine .
# Run:   docker run -p 8080:8080 -v vitrine-models:/srv/models -e REDIS_URL=redis://redis:6379/0 vitrine
# Without REDIS_URL the server starts its embedded Redis under /srv/data (single machine only).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OPENBLAS_NUM_THREADS=1 \
    OMP_NUM_THREADS=1 \
    VITRINE_MODEL_STORE=/srv/models \
    VITRINE_DATA_DIR=/srv/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY vitrine ./vitrine
COPY models ./models
COPY server ./server
COPY training ./training
COPY loadtest ./loadtest
RUN pip install --no-cache-dir . && useradd --system --home /srv vitrine \
    && mkdir -p /srv/models /srv/data && chown -R vitrine /srv
USER vitrine
EXPOSE 8080
VOLUME ["/srv/models", "/srv/data"]
CMD ["vitrine", "serve", "--host", "0.0.0.0", "--port", "8080"]
