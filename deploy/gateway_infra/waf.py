"""AWS WAF in front of the Events API: AWS's common rule set and a per-IP rate limit.

WAF sees AppSync's HTTP requests: the WebSocket handshakes, and HTTP publishes (the chat
handler's SigV4-signed answer chunks, and any client's `POST /event`). Two choices follow
from what those requests carry:

- The common rule set's body rules (size, XSS, LFI/RFI, SSRF in the body) only count: chat
  bodies are prompts and model answers, which legitimately hold code, `<script>` and file
  paths and grow to AppSync's 240 KB event limit with a conversation's history. The data
  plane validates every event; the rules on headers, URI and query string still block.
- The rate limit ignores SigV4-signed requests: one streamed answer is dozens of publishes
  from the chat handler, and Lambda's egress addresses are shared by every turn, so a per-IP
  limit would throttle the gateway's own answers. A request that merely claims SigV4 skips
  the limit but is refused by AppSync's signature check before any handler runs.
"""
from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

COMMON_RULE_SET = "AWSManagedRulesCommonRuleSet"
COUNTED_BODY_RULES = (
    "SizeRestrictions_BODY",
    "CrossSiteScripting_BODY",
    "GenericLFI_BODY",
    "GenericRFI_BODY",
    "EC2MetaDataSSRF_BODY",
)
SIGV4_PREFIX = "AWS4-HMAC-SHA256"


def _visibility(metric_name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=metric_name, sampled_requests_enabled=True
    )


class EventsApiFirewall(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        api_arn: str,
        rate_limit: int,
        rate_window_seconds: int,
    ) -> None:
        super().__init__(scope, construct_id)
        prefix = Stack.of(self).stack_name
        common_rules = wafv2.CfnWebACL.RuleProperty(
            name="AwsCommonRules",
            priority=0,
            override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                    vendor_name="AWS",
                    name=COMMON_RULE_SET,
                    rule_action_overrides=[
                        wafv2.CfnWebACL.RuleActionOverrideProperty(
                            name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                        )
                        for rule in COUNTED_BODY_RULES
                    ],
                )
            ),
            visibility_config=_visibility(f"{prefix}-common-rules"),
        )
        not_sigv4 = wafv2.CfnWebACL.StatementProperty(
            not_statement=wafv2.CfnWebACL.NotStatementProperty(
                statement=wafv2.CfnWebACL.StatementProperty(
                    byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
                        field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(
                            single_header={"Name": "authorization"}
                        ),
                        positional_constraint="STARTS_WITH",
                        search_string=SIGV4_PREFIX,
                        text_transformations=[
                            wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")
                        ],
                    )
                )
            )
        )
        rate_limit_rule = wafv2.CfnWebACL.RuleProperty(
            name="RequestsPerIp",
            priority=1,
            action=wafv2.CfnWebACL.RuleActionProperty(block={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                    aggregate_key_type="IP",
                    limit=rate_limit,
                    evaluation_window_sec=rate_window_seconds,
                    scope_down_statement=not_sigv4,
                )
            ),
            visibility_config=_visibility(f"{prefix}-requests-per-ip"),
        )
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            description="AI gateway Events API: AWS common rules and a per-IP request rate limit.",
            rules=[common_rules, rate_limit_rule],
            visibility_config=_visibility(f"{prefix}-events-api"),
        )
        wafv2.CfnWebACLAssociation(
            self, "EventsApiAssociation", resource_arn=api_arn, web_acl_arn=self.web_acl.attr_arn
        )
