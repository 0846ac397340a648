"""streamkit: the checker (probe, lint), the local process runner, and the CLI."""
