from django.contrib.admin.apps import AdminConfig


class GatewayAdminConfig(AdminConfig):
    """`django.contrib.admin` with the gateway's site (`gateway_project.admin_site`)."""

    default_site = "gateway_project.admin_site.GatewayAdminSite"
