"""The Kafka layer: clients, error faults, topic names."""
