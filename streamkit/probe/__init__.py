"""`streamkit probe`: measure whether a deployment really streams."""
