"""Cognito: who the users are. Every user's `sub` names their channels and their quota rows."""
from __future__ import annotations

import re

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from .nag import acknowledge

# Cognito refuses these words in a hosted UI prefix.
_RESERVED_PREFIX_WORDS = ("aws", "amazon", "cognito")


def default_domain_prefix(stack_name: str) -> str:
    """`<stack name>-<account id>`, lower-cased: unique per stack in an account and region.

    A hosted UI prefix is global within a region, so two stacks (dev beside prod) in one
    account need different ones; the stack name tells them apart and the account id keeps the
    prefix clear of other accounts. Cognito allows lower-case letters, digits and hyphens (up
    to 63) and refuses `aws`, `amazon` and `cognito` in it.
    """
    name = re.sub(r"[^a-z0-9-]+", "-", stack_name.lower())
    for word in _RESERVED_PREFIX_WORDS:
        name = name.replace(word, "")
    name = re.sub(r"-{2,}", "-", name).strip("-")[: 63 - 13] or "gateway"
    return f"{name}-{Aws.ACCOUNT_ID}"


class GatewayAuth(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        domain_prefix: str,
        callback_urls: tuple[str, ...],
        logout_urls: tuple[str, ...],
        retain_data: bool,
    ) -> None:
        super().__init__(scope, construct_id)

        self.user_pool = cognito.UserPool(
            self,
            "UserPool",
            # Admins invite staff (or a corporate IdP federates them); nobody signs themselves up
            # for a budget that the organisation pays for.
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True, username=False),
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True)
            ),
            password_policy=cognito.PasswordPolicy(
                min_length=14,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            mfa=cognito.Mfa.OPTIONAL,
            # Authenticator apps only: SMS MFA needs an SNS spending setup and is phishable.
            mfa_second_factor=cognito.MfaSecondFactor(sms=False, otp=True),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            feature_plan=cognito.FeaturePlan.ESSENTIALS,
            deletion_protection=retain_data,
            removal_policy=RemovalPolicy.RETAIN if retain_data else RemovalPolicy.DESTROY,
        )
        acknowledge(
            self.user_pool,
            "AwsSolutions-COG2",
            "MFA is OPTIONAL by product decision: users enrol an authenticator app themselves; "
            "an organisation that requires MFA federates its IdP or switches the pool to REQUIRED.",
        )
        for rule_id in ("AwsSolutions-COG3", "AwsSolutions-COG8"):
            acknowledge(
                self.user_pool,
                rule_id,
                "Threat protection (advanced security) needs the Cognito Plus plan, billed per "
                "active user; the pool has no self sign-up and a strong password policy, and "
                "the plan can be switched on later without code changes.",
            )

        self.domain = self.user_pool.add_domain(
            "HostedUi", cognito_domain=cognito.CognitoDomainOptions(domain_prefix=domain_prefix)
        )

        # The Django app logs users in with the OIDC authorization-code flow (django-allauth's
        # amazon_cognito provider). It is a confidential server-side client, hence the secret.
        self.web_client = self.user_pool.add_client(
            "DjangoWebClient",
            generate_secret=True,
            auth_flows=cognito.AuthFlow(user_srp=True),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[
                    cognito.OAuthScope.OPENID,
                    cognito.OAuthScope.EMAIL,
                    cognito.OAuthScope.PROFILE,
                ],
                callback_urls=list(callback_urls),
                logout_urls=list(logout_urls),
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            id_token_validity=Duration.hours(1),
            access_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.days(30),
        )

    @property
    def domain_url(self) -> str:
        """`https://<prefix>.auth.<region>.amazoncognito.com`, the form allauth's DOMAIN wants."""
        return self.domain.base_url()
