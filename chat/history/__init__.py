"""Conversation history on the server: retention, reads, writes, the JSON API and exports."""
