"""pvgen: generate paravirtual drivers by rewriting port I/O at assembly time."""

__version__ = "0.1.0"
