"""`taskstream config show|env-example`: the effective settings and their documentation."""

from __future__ import annotations

from pathlib import Path

import click
from pydantic import BaseModel

from taskstream.settings import Settings, get_settings

SECTION_HELP = {
    "db": "PostgreSQL (SQLAlchemy async URL, asyncpg driver)",
    "kafka": "Kafka-protocol broker: topics, consumer group, producer and batch tuning",
    "redis": "Redis: rate limits, idempotency keys, accepted-command records",
    "rabbit": "RabbitMQ: domain-event exchange, worker prefetch, webhook retries",
    "auth": "JWT access tokens and refresh sessions (empty secret: generated into "
    "infra.state_dir/jwt-secret outside production)",
    "limits": "Rate limits in `limits` notation (N/second|minute|hour); policy when Redis is down",
    "api": "HTTP API: bind address, workers, body size, batch and page caps",
    "webhooks": "Webhook POSTs: attempt deadline, response cap, concurrency per destination",
    "smtp": "Outgoing email for notifications",
    "otel": "OpenTelemetry trace export over OTLP/HTTP (no endpoint: nothing exported, no SDK "
    "loaded; OTEL_EXPORTER_OTLP_ENDPOINT is used when the endpoint is unset)",
    "attachments": "Task attachments: object store URL (file:// or s3://), S3 credentials, "
    "clamd address, upload size bounds, image sizes",
    "infra": "`taskstream infra`: where logs and pids of locally started services live",
}


def render_env_example(settings: Settings | None = None) -> str:
    """Every TASKSTREAM_* variable with its default, grouped by subsystem."""
    settings = settings or Settings.model_construct()  # defaults only: no env, no .env
    env = settings.as_env()
    lines = [
        "# taskstream settings: every variable with its default.",
        "# Copy to .env (read at start-up) or export them. Nested fields use a double underscore.",
        "# Regenerate with `taskstream config env-example > .env.example`.",
        "",
        "# development | test | production (production refuses placeholder secrets)",
        f"TASKSTREAM_ENVIRONMENT={settings.environment}",
        f"TASKSTREAM_LOG_LEVEL={settings.log_level}",
        "# text | json (one JSON object per line with request, command and trace ids)",
        f"TASKSTREAM_LOG_FORMAT={settings.log_format}",
    ]
    for section, value in settings:
        if not isinstance(value, BaseModel):
            continue
        lines += ["", f"# {section}: {SECTION_HELP.get(section, section)}"]
        for name, info in type(value).model_fields.items():
            variable = f"TASKSTREAM_{section.upper()}__{name.upper()}"
            if info.description:
                lines.append(f"# {info.description}")
            if variable in env:
                lines.append(f"{variable}={env[variable]}")
            else:
                lines.append(f"# {variable}=  (unset by default)")
    return "\n".join(lines) + "\n"


@click.group("config")
def config() -> None:
    """Inspect settings."""


@config.command("show")
def show() -> None:
    """Print the effective settings (secrets masked)."""
    click.echo(get_settings().model_dump_json(indent=2))


@config.command("env-example")
@click.option("--output", type=click.Path(path_type=Path), default=None)
def env_example(output: Path | None) -> None:
    """Print (or write) the documented list of every variable and its default."""
    text = render_env_example()
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)


def register(main: click.Group) -> None:
    main.add_command(config)
