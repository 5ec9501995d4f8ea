"""What the command line and the GUI share: where files live (paths), the declared settings,
and access to the Hugging Face Hub with the saved token."""
