"""The configuration: finding and trusting the file, typed sections, contexts, `config show`."""
