"""QuantDesk's version (pyproject.toml's, kept equal by a test): shown by ``--version`` and
About, written into exported chats."""

__version__ = "0.1.0"
