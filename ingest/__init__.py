"""The edge where CloudEvents become domain commands: shared by the HTTP API and Kafka workers."""
