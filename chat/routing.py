from django.urls import path

from chat.consumers import EventsConsumer

websocket_urlpatterns = [
    path("event/realtime", EventsConsumer.as_asgi()),
]
