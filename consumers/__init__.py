"""Kafka stream consumers."""
