"""HTTP users migrations, one module per revision, oldest first by ``down_revision``."""
