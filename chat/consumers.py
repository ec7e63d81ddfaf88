"""The AppSync-Events-style WebSocket consumer (built in the chat issue)."""
from channels.generic.websocket import AsyncJsonWebsocketConsumer


class EventsConsumer(AsyncJsonWebsocketConsumer):
    pass
