"""The CRM node's tables, their migrations and the stores that read and write them."""
