"""What a bug report and the About dialog need to know about this installation."""
