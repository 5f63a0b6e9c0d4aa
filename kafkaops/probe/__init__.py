"""`kafkaops probe`: records written and read back through the cluster, as the service writes
them, timed."""
