# One image for the api and worker services of docker-compose.yml.
FROM node:20-slim AS assets
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --omit=dev

FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml ./
COPY schema schema
COPY core core
COPY workflows workflows
COPY activities activities
COPY api api
COPY web web
COPY migrations migrations
COPY alembic.ini worker.py app.py ./
RUN pip install --no-cache-dir .
COPY --from=assets /app/node_modules node_modules
RUN useradd --system --uid 10001 canhbao
USER canhbao
EXPOSE 8000
# Proxy headers are believed only from CANHBAO_FORWARDED_ALLOW_IPS (core/serving.py).
CMD ["canhbao", "serve", "--host", "0.0.0.0", "--port", "8000"]
