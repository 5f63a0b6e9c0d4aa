"""`kafkaops doctor`: the Kafka ACLs each command needs (one table, `acls.py`, that the ACL
page and the tests read too), checked for the configured principal without side effects
(`kafka_checks.py`), the database side (`database.py`), and the report (`report.py`)."""
