"""The Kafka layer: building clients, their errors as kafkaops errors, error faults, what the
cluster says (metadata, offsets, groups), topic and DLQ names."""
