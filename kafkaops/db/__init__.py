"""The database: engines and sessions, the table mapping, failed-event queries, statuses."""
