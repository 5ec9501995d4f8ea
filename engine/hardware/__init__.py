"""What this machine has (CPU, GPUs, memory) and what the llama.cpp build can use of it."""
