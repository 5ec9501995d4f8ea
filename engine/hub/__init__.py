"""The Hugging Face Hub: search, a repository's quantizations, GGUF headers by range requests,
the saved token."""
