"""The one place an ``AIOKafkaProducer`` is built, so every producer has the same delivery
semantics, set here visibly (aiokafka's defaults are unsafe for us):

- ``acks="all"``: a send counts only once every in-sync replica has it (aiokafka: acks=1).
  The API answers 202, the applier commits past a dead letter and the relay marks an event
  sent only after that acknowledgement.
- ``enable_idempotence`` comes from ``KafkaSettings``: tansu (the local broker) does not
  implement InitProducerId, so it is off there. Duplicates from producer retries are harmless:
  the consumer dedupes on ``commandId`` in its inbox, and events carry stable ids.
Batching and timeouts are the caller's (``linger_ms``, ``request_timeout_ms`` ...): the API and
the relay set ``request_timeout_ms`` to the publish timeout, so a message its sender already
gave up on expires in the producer instead of being delivered minutes later.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaProducer

from taskstream.settings import KafkaSettings


def new_producer(settings: KafkaSettings, **overrides: Any) -> AIOKafkaProducer:
    """A producer with the safe delivery settings; ``overrides`` tune batching and sizes
    (``linger_ms``, ``max_batch_size``, ``client_id`` ...), never the delivery guarantee."""
    if "acks" in overrides or "enable_idempotence" in overrides:
        raise ValueError("delivery semantics are fixed by new_producer")
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        enable_idempotence=settings.enable_idempotence,
        **overrides,
    )
