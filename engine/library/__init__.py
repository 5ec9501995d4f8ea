"""The model library: files found in place, imported or downloaded, indexed in SQLite, with
each model's presets."""
