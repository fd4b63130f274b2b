"""Hypothesis keeps no example database in the working tree for these tests."""

from hypothesis import settings

settings.register_profile("powerbus-load-balancer", database=None)
settings.load_profile("powerbus-load-balancer")
