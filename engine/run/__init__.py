"""Running a model: loading it (after a test load in a child process), in its own host process,
and generating from it."""
