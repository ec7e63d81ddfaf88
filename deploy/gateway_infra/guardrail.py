"""The stack's default Amazon Bedrock guardrail, with a published version.

Policies choose it in the admin ("the stack's default"); the chat Lambda (and Django, from the
stack outputs) get its id and version as GATEWAY_GUARDRAIL_ID/GATEWAY_GUARDRAIL_VERSION.

Versions: a guardrail version is an immutable snapshot, and AWS::Bedrock::GuardrailVersion
replaces itself (publishing a new version) only when one of its properties changes. The
version's description therefore carries a digest of the guardrail's configuration, so every
change to the filters publishes a new version and the Lambda moves to it in the same deploy;
the working draft is never what users get.
"""
from __future__ import annotations

import hashlib
import json

from aws_cdk import aws_bedrock as bedrock
from constructs import Construct

from dataplane.providers.base import GUARDRAIL_BLOCKED_MESSAGE

# Content filters on input and output; the prompt-attack filter applies to input only (AWS
# requires its output strength to be NONE).
CONTENT_FILTERS = (
    ("HATE", "HIGH", "HIGH"),
    ("INSULTS", "HIGH", "HIGH"),
    ("SEXUAL", "HIGH", "HIGH"),
    ("VIOLENCE", "HIGH", "HIGH"),
    ("MISCONDUCT", "HIGH", "HIGH"),
    ("PROMPT_ATTACK", "HIGH", "NONE"),
)
# Personal data is masked (the conversation goes on without it); credentials are blocked
# outright, since a masked secret in a prompt is still a leaked secret.
PII_ACTIONS = {
    "NAME": "ANONYMIZE",
    "ADDRESS": "ANONYMIZE",
    "EMAIL": "ANONYMIZE",
    "PHONE": "ANONYMIZE",
    "AGE": "ANONYMIZE",
    "IP_ADDRESS": "ANONYMIZE",
    "MAC_ADDRESS": "ANONYMIZE",
    "DRIVER_ID": "ANONYMIZE",
    "LICENSE_PLATE": "ANONYMIZE",
    "US_SOCIAL_SECURITY_NUMBER": "ANONYMIZE",
    "US_PASSPORT_NUMBER": "ANONYMIZE",
    "US_BANK_ACCOUNT_NUMBER": "ANONYMIZE",
    "INTERNATIONAL_BANK_ACCOUNT_NUMBER": "ANONYMIZE",
    "CREDIT_DEBIT_CARD_NUMBER": "ANONYMIZE",
    "CREDIT_DEBIT_CARD_CVV": "BLOCK",
    "PIN": "BLOCK",
    "PASSWORD": "BLOCK",
    "AWS_ACCESS_KEY": "BLOCK",
    "AWS_SECRET_KEY": "BLOCK",
}
# Korean identifiers Bedrock has no entity type for.
PII_REGEXES = (
    ("KR_RESIDENT_NUMBER", r"\d{6}\s?-?\s?[1-8]\d{6}", "Korean resident registration number"),
    ("KR_PHONE", r"(?:\+82[\s-]?|0)1[016789][\s.-]?\d{3,4}[\s.-]?\d{4}", "Korean mobile phone number"),
)


def guardrail_properties() -> dict:
    return {
        "blocked_input_messaging": GUARDRAIL_BLOCKED_MESSAGE,
        "blocked_outputs_messaging": GUARDRAIL_BLOCKED_MESSAGE,
        "content_policy_config": bedrock.CfnGuardrail.ContentPolicyConfigProperty(
            filters_config=[
                bedrock.CfnGuardrail.ContentFilterConfigProperty(type=kind, input_strength=i, output_strength=o)
                for kind, i, o in CONTENT_FILTERS
            ]
        ),
        "sensitive_information_policy_config": bedrock.CfnGuardrail.SensitiveInformationPolicyConfigProperty(
            pii_entities_config=[
                bedrock.CfnGuardrail.PiiEntityConfigProperty(type=kind, action=action)
                for kind, action in PII_ACTIONS.items()
            ],
            regexes_config=[
                bedrock.CfnGuardrail.RegexConfigProperty(name=name, pattern=pattern, action="ANONYMIZE",
                                                         description=description)
                for name, pattern, description in PII_REGEXES
            ],
        ),
        "word_policy_config": bedrock.CfnGuardrail.WordPolicyConfigProperty(
            managed_word_lists_config=[bedrock.CfnGuardrail.ManagedWordsConfigProperty(type="PROFANITY")]
        ),
    }


def configuration_digest() -> str:
    """A short digest of what the guardrail does, so a change publishes a new version."""
    canonical = json.dumps(
        {"filters": CONTENT_FILTERS, "pii": PII_ACTIONS, "regexes": PII_REGEXES, "message": GUARDRAIL_BLOCKED_MESSAGE},
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


class DefaultGuardrail(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, name: str) -> None:
        super().__init__(scope, construct_id)
        self.guardrail = bedrock.CfnGuardrail(
            self,
            "Guardrail",
            name=name,
            description="The AI gateway's default guardrail: content filters, prompt attacks, personal data.",
            **guardrail_properties(),
        )
        self.version = bedrock.CfnGuardrailVersion(
            self,
            "Version",
            guardrail_identifier=self.guardrail.attr_guardrail_id,
            description=f"Configuration {configuration_digest()}",
        )

    @property
    def guardrail_id(self) -> str:
        return self.guardrail.attr_guardrail_id

    @property
    def version_number(self) -> str:
        return self.version.attr_version
