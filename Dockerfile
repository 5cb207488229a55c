# One image for every taskstream process (api, consume, relay, work); the command picks one.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY src ./src
COPY consumers ./consumers
COPY workers ./workers
COPY migrations ./migrations
# no embedded broker in the image (the `embedded` extra is for development); the OpenTelemetry
# SDK is there but loaded only when an OTLP endpoint is configured
RUN pip install '.[otel]'
# The local attachment store when no S3 URL is set: a volume shared by the API and the
# attachment processors (a new named volume takes this directory's owner).
RUN mkdir -p /var/lib/taskstream/attachments && chown nobody /var/lib/taskstream/attachments
USER nobody
ENTRYPOINT ["taskstream"]
CMD ["run"]
