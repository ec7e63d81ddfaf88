from django.urls import path

from chat import views
from chat.history import api as history

app_name = "chat"
urlpatterns = [
    path("", views.chat_page, name="chat"),
    path("api/me", views.api_me, name="me"),
    path("api/token", views.api_token, name="token"),
    path("api/conversations/", history.conversations, name="conversations"),
    path("api/conversations/export", history.conversations_export, name="conversations-export"),
    path("api/conversations/<str:conversation_id>", history.conversation, name="conversation"),
    path("api/conversations/<str:conversation_id>/turns", history.conversation_turns, name="conversation-turns"),
    path("api/conversations/<str:conversation_id>/export", history.conversation_export, name="conversation-export"),
    path("event", views.publish_events, name="publish"),
    path("healthz", views.healthz, name="healthz"),
]
