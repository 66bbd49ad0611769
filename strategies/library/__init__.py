"""Built-in strategies; every module here is scanned by the registry."""
