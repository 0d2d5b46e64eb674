"""The audit trail: service events become hash-chained records in the index (see ``domain/audit.py``)."""
