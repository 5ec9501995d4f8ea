"""QuantDesk: run quantized language models on your own computer."""

from quantdesk.engine.version import __version__

__all__ = ["__version__"]
