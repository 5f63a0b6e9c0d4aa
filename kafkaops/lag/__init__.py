"""Consumer lag (`kafkaops lag`, and `status`' consumer_lag check): committed and end offsets,
lag in records and in time, members, and a verdict per group by Burrow's rules."""
