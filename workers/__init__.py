"""RabbitMQ workers and the outbox relay."""
