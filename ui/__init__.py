"""QuantDesk widgets and item models. Presentation only: no file formats, no HTTP."""
