"""WebSocket routes, all under /ws/. Job streams join here with the training-runs work."""

websocket_urlpatterns: list = []
