"""kafkaops: the operator's command-line tool for a resilient Kafka publishing pipeline."""

__version__ = "0.1.0"
