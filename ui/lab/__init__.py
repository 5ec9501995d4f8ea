"""The Lab page and its charts."""
