# One image for every taskstream process (api, consume, relay, work); the command picks one.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY src ./src
COPY consumers ./consumers
COPY workers ./workers
COPY migrations ./migrations
RUN pip install .
USER nobody
ENTRYPOINT ["taskstream"]
CMD ["run"]
