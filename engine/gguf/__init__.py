"""GGUF files: the strict header reader, tensor and file types, a model's summary, what each
quantization type means."""
