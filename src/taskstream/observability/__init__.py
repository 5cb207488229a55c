"""What operators see of every process: Prometheus metrics (definitions, the multiprocess
directory, the per-process listener), the W3C trace context that follows a command from HTTP to
webhook, and the optional OpenTelemetry export."""
