"""Conversations: chat templates, prompts, the chats kept in SQLite, export and import."""
