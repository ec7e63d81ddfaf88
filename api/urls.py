from django.urls import path

from api import views

app_name = "api"
urlpatterns = [
    path("v1/models", views.models_list, name="models"),
    path("v1/chat/completions", views.chat_completions, name="chat-completions"),
    path("account/api-keys/", views.keys_page, name="keys"),
    path("account/api-keys/<int:key_id>/revoke", views.key_revoke, name="key-revoke"),
]
