from django.urls import path

from analytics import views

app_name = "analytics"
urlpatterns = [
    path("", views.report_list, name="report_list"),
    path("runs/<int:run_id>/", views.run_detail, name="run_detail"),
    path("runs/<int:run_id>.csv", views.run_csv, name="run_csv"),
    path("runs/<int:run_id>/status.json", views.run_status, name="run_status"),
    path("<slug:slug>/", views.report_detail, name="report_detail"),
    path("<slug:slug>/run/", views.report_run_now, name="report_run_now"),
]
