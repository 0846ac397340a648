"""streamkit reference app: LLM token streaming over Server-Sent Events, done right."""
