"""Quantizing: F16 from a Hugging Face folder, llama.cpp's quantizer, importance matrices, the
quality check."""
