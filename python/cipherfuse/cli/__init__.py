"""Command-line interface (``cipherfuse``)."""
