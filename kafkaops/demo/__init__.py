"""The demo and sandbox: the story, the stand-in service, the embedded cluster."""
