"""Services: one path per use case. Adapters call these; these call the Index and BlobStore ports."""
