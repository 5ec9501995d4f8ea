"""Settings: the chat's load and sampling panel, the editors built from the declared settings,
presets, Preferences."""
