"""The audit journal: who changed what with kafkaops, when, and how it ended."""
