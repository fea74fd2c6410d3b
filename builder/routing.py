"""WebSocket routes, all under /ws/."""

from django.urls import path

from compute.jobs.consumers import JobConsumer, QueueConsumer

websocket_urlpatterns = [
    path("ws/jobs/<int:job_id>/", JobConsumer.as_asgi()),
    path("ws/admin/queue/", QueueConsumer.as_asgi()),
]
