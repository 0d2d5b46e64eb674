"""Pure domain types: levels, UIDs, statuses and errors. No I/O here."""
