"""How much memory a model takes before it is loaded, and whether it fits: from the GGUF header
alone, or llama.cpp's own dry run."""
