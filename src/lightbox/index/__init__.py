"""The index: what the archive holds, searchable. Only the composition root picks a backend."""
