"""taskstream: high-volume task ingestion through Kafka."""
