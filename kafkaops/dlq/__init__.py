"""Dead-letter topics: the catalogue, record headers, selection, the replay plan and the replay."""
