"""What tests, benchmarks and ``atelier models make-tiny`` use and production jobs never do:
tiny random-weight models of every pipeline kind."""

from inference.testing.tiny import make_tiny, write_tiny_esrgan

__all__ = ["make_tiny", "write_tiny_esrgan"]
