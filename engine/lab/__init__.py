"""The Lab: one source quantized to several types, each measured for size, quality and speed
(the ladder)."""
