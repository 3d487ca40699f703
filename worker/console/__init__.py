"""The console: server-rendered pages at /console, served by the API with its own assets."""
