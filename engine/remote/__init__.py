"""Models on other servers that speak OpenAI's API, and the list of those servers."""
