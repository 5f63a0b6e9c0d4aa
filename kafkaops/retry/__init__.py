"""The retry pass: claim due events, publish, settle, metrics."""
