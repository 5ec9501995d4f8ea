"""The chat: its page, the virtualized transcript (item model, view, delegate, Markdown), the saved
chats list."""
