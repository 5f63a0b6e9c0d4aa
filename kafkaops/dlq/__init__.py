"""Dead-letter topics: the catalogue, record headers, selection, reading, `dlq list`, `ensure` and
`tail`, the replay plan, the replay's read loop and its transactions."""
