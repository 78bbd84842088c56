# The production image: gunicorn serves the web process; the same image runs the
# Celery worker and beat (see fly.toml [processes]).
FROM python:3.11-slim

ARG UV_VERSION=0.13.9

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH="/app/.venv/bin:${PATH}" \
    DATA_DIR=/app/var \
    STATICFILES_BACKEND=whitenoise.storage.CompressedStaticFilesStorage

RUN pip install --no-cache-dir "uv==${UV_VERSION}"

WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-cache

COPY . .

# Static files are collected at build time; no secret exists yet, so this step
# alone gets a throwaway key.
ARG BUILD_SECRET_KEY=collectstatic-only-not-a-secret
RUN SECRET_KEY="${BUILD_SECRET_KEY}" python manage.py collectstatic --noinput \
    && useradd --system --uid 10001 --user-group --home-dir /app --no-create-home app \
    && mkdir -p /app/var \
    && chown -R app:app /app/var

USER app

EXPOSE 8000

CMD ["gunicorn", "incident_response.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "4", "--timeout", "60", "--access-logfile", "-"]
