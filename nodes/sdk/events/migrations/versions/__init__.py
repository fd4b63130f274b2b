"""SDK event table migrations, one module per revision."""
