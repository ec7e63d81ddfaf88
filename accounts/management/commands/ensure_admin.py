"""Create the first admin account when none exists, printing its password once."""
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from accounts.roles import GATEWAY_ADMINS
from quotas.services import policy_publish_request


class Command(BaseCommand):
    help = "Create a superuser 'admin' with a random password when the site has no superuser."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument(
            "--site-url",
            default="http://127.0.0.1:8000",
            help="where the site is served (make run passes its HOST and PORT)",
        )

    def handle(self, *args, username: str, site_url: str, **options) -> None:
        user_model = get_user_model()
        if user_model.objects.filter(is_superuser=True).exists():
            self.stdout.write("An admin account exists already; not creating another.")
            return
        password = secrets.token_urlsafe(12)
        user = user_model.objects.create_superuser(username=username, email=f"{username}@localhost", password=password)
        user.groups.add(Group.objects.get_or_create(name=GATEWAY_ADMINS)[0])
        policy_publish_request(users=[user])  # so the admin can chat at once
        bar = "=" * 64
        self.stdout.write(
            self.style.SUCCESS(
                f"\n{bar}\n  Admin account created (shown only this once):\n"
                f"    username: {username}\n    password: {password}\n"
                f"  Sign in at {site_url.rstrip('/')}/accounts/login/\n{bar}\n"
            )
        )
