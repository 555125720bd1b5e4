"""Built-in entrypoints that need no download: ``digits`` and ``regression``."""
