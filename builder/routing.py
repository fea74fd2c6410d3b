"""WebSocket routes, all under /ws/."""

from django.urls import path

from compute.jobs.consumers import JobConsumer

websocket_urlpatterns = [
    path("ws/jobs/<int:job_id>/", JobConsumer.as_asgi()),
]
