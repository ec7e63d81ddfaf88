from django.urls import path

from chat import views

app_name = "chat"
urlpatterns = [
    path("", views.chat_page, name="chat"),
    path("api/me", views.api_me, name="me"),
    path("api/token", views.api_token, name="token"),
    path("event", views.publish_events, name="publish"),
    path("healthz", views.healthz, name="healthz"),
]
