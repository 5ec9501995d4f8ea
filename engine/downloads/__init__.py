"""Downloads: one file resumable and verified, and the queue that survives restarts."""
