"""llama.cpp itself: what the installed build can do, its log, ggml's structs in ctypes, which
architectures it knows."""
