"""Broker wiring: the one producer factory with the delivery settings, and the API's publisher."""

from taskstream.kafka.producer import new_producer
from taskstream.kafka.publisher import CommandPublisher

__all__ = ["CommandPublisher", "new_producer"]
