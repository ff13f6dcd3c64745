"""What happened: the audit log, per-user limits, metrics."""
