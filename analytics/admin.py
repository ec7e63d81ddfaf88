from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from analytics import services
from analytics.delivery import InvalidRecipientsError, recipients_parse
from analytics.models import ReportDefinition, ReportRun, ReportSchedule
from analytics.params import ReportParamsError


@admin.register(ReportDefinition)
class ReportDefinitionAdmin(admin.ModelAdmin):
    list_display = ("title", "slug", "chart_kind", "is_active", "updated_at")
    list_filter = ("is_active", "chart_kind")
    search_fields = ("title", "slug", "description")
    prepopulated_fields = {"slug": ("title",)}
    actions = ["run_now"]

    @admin.action(description=_("Run now with default parameters"), permissions=["change"])
    def run_now(self, request: HttpRequest, queryset: QuerySet[ReportDefinition]) -> None:
        for definition in queryset:
            try:
                services.report_run_request(
                    definition=definition, params=definition.default_params, requested_by=request.user
                )
            except ReportParamsError as error:
                self.message_user(request, f"{definition}: {error}", messages.ERROR)  # the error is the service's words
                return
        self.message_user(request, gettext("Queued %(count)s report run(s).") % {"count": queryset.count()})


class ReportScheduleForm(forms.ModelForm):
    class Meta:
        model = ReportSchedule
        fields = ("definition", "frequency", "hour_utc", "enabled", "recipients", "periodic_task")

    def clean_recipients(self) -> str:
        try:
            return "\n".join(recipients_parse(self.cleaned_data.get("recipients") or ""))
        except InvalidRecipientsError as error:
            raise forms.ValidationError(str(error)) from error


@admin.register(ReportSchedule)
class ReportScheduleAdmin(admin.ModelAdmin):
    form = ReportScheduleForm
    list_display = ("definition", "frequency", "hour_utc", "enabled", "periodic_task")
    list_editable = ("frequency", "hour_utc", "enabled")
    # The beat task's name shows its schedule, which reads each kind of schedule it may have.
    list_select_related = (
        "definition",
        "periodic_task__crontab",
        "periodic_task__interval",
        "periodic_task__solar",
        "periodic_task__clocked",
    )
    readonly_fields = ("periodic_task",)

    def save_model(self, request: HttpRequest, obj: ReportSchedule, form, change: bool) -> None:
        # The beat PeriodicTask follows the schedule; the service keeps the two in step.
        services.report_schedule_save(schedule=obj)

    def delete_model(self, request: HttpRequest, obj: ReportSchedule) -> None:
        services.report_schedule_delete(schedule=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ReportSchedule]) -> None:
        for schedule in queryset:
            services.report_schedule_delete(schedule=schedule)


@admin.register(ReportRun)
class ReportRunAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "definition",
        "status",
        "trigger",
        "requested_by",
        "created_at",
        "duration_ms",
        "row_count",
        "engine",
    )
    list_filter = ("status", "trigger", "engine", "definition")
    list_select_related = ("definition", "requested_by")
    date_hierarchy = "created_at"
    exclude = ("rows",)
    readonly_fields = [f.name for f in ReportRun._meta.fields if f.name != "rows"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ReportRun]:
        # The stored rows can be 10,000 cells: the list never shows them.
        return super().get_queryset(request).defer("rows", "columns")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # runs are made by requesting one, not typed in
