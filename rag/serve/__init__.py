"""Serve: the HTTP server, auth, request guard and the chat page."""
