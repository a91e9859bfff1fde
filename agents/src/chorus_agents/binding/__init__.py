"""The A2A Kafka binding (``https://chorus.dev/a2a/bindings/kafka/v1``): codec, client, server."""
