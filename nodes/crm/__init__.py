"""The CRM node (placeholder docstring, replaced below)."""
