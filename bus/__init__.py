"""The powerbus bus server: registry, router, reflection, health, configuration and CLI."""
