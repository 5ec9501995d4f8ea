"""The library sidebar and a model's Details… dialog."""
