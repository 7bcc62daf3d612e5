"""The Kafka-mode workers, each its own process."""
