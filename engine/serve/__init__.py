"""The OpenAI-compatible API server over the loaded model, and who may talk to it."""
