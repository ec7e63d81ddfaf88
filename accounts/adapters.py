from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings


def _policy_publish(user) -> None:
    """A new user is refused by the data plane until their effective policy is in the store."""
    from quotas.services import policy_publish_request

    policy_publish_request(users=[user])


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        return settings.ACCOUNT_ALLOW_SIGNUPS

    def save_user(self, request, user, form, commit=True):
        user = super().save_user(request, user, form, commit=commit)
        if commit:
            _policy_publish(user)
        return user

    def login(self, request, user) -> None:
        super().login(request, user)
        # Users created where no service ran (Django's createsuperuser, a script) get their
        # policy at their first sign-in; for everyone else this is one indexed read.
        from quotas.services import user_policy_ensure

        user_policy_ensure(user=user)


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request, sociallogin) -> bool:
        # The organisation's Cognito pool decides who exists; a first login creates the user.
        return True

    def populate_user(self, request, sociallogin, data):
        user = super().populate_user(request, sociallogin, data)
        if sociallogin.account.provider == "amazon_cognito":
            # The Cognito `sub` is the user's id in the data plane and in their channel names.
            user.sub = sociallogin.account.uid
        return user

    def save_user(self, request, sociallogin, form=None):
        user = super().save_user(request, sociallogin, form=form)
        _policy_publish(user)
        return user
