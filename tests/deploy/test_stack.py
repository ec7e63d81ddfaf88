"""The CDK app, synthesized offline once per module and checked resource by resource.

Synth runs the same validation plugins as `cdk synth` (cdk-nag's AWS Solutions pack and CDK's
CloudFormation validation), so a successful synth already means no unacknowledged finding;
the tests below check what the template promises the data plane and the control plane.
"""
from __future__ import annotations

import importlib
import inspect
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Annotations, Match
from cdk_nag import AwsSolutionsChecks
from gateway_infra.config import GatewayConfig, _as_bool, _as_list
from gateway_infra.functions import (
    CHAT_HANDLER,
    SUBSCRIBE_AUTHORIZER_HANDLER,
)
from gateway_infra.lake import LAKE_PREFIX
from gateway_infra.monitoring import GATEWAY_METRICS
from gateway_infra.outputs import ENV_OUTPUTS, env_lines, output_id
from gateway_infra.tables import TTL_ATTRIBUTE

from dataplane.config import GatewayConfig as DataPlaneConfig
from dataplane.settings_table import DATA_PLANE_SETTINGS
from dataplane.telemetry.schema import LAKE_COLUMNS, PARTITION_KEYS
from tests.deploy.synth import CDK_JSON, Synth

# Actions that IAM cannot scope to a resource, so `"Resource": "*"` is the only way to grant
# them. Anything else on "*" fails the test.
UNSCOPABLE_ACTIONS = {
    "xray:PutTraceSegments",  # X-Ray has no resource-level permissions
    "xray:PutTelemetryRecords",
    "cloudwatch:PutMetricData",  # scoped by a namespace condition, never by resource
    # Firehose's record format conversion: AWS's documented delivery-role policy grants it on
    # "*" (CDK's schema grant does the same); it reads schema-registry versions, not data.
    "glue:GetSchemaVersion",
}


@pytest.fixture
def synth(stack_synth: Synth) -> Synth:
    """The stack synthesized once per session (tests/aws/plugin.py)."""
    return stack_synth


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


# -- validation: cdk-nag, cfn-lint ---------------------------------------------------------------


def test_cdk_nag_reports_no_unacknowledged_errors(synth: Synth) -> None:
    errors = Annotations.from_stack(synth.stack).find_error(
        "*", Match.string_like_regexp("AwsSolutions-.*")
    )
    assert errors == []
    report_path = Path(synth.assembly.directory) / "validation-report.json"
    if report_path.exists():
        report = json.loads(report_path.read_text())
        assert [p for p in report["pluginReports"] if p["conclusion"] != "success"] == []


def test_cdk_nag_pack_is_live_and_fails_an_unsafe_resource() -> None:
    # A guard on the guard: the same plugin wiring must reject an obviously unsafe bucket, or
    # the clean synth above would prove nothing.
    app = cdk.App()
    stack = cdk.Stack(app, "UnsafeProbe")
    s3.Bucket(stack, "NoLogsNoSsl")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(Exception, match=r"Validation failed|AwsSolutions-S"):
        app.synth()


# Regions the data plane is meant for (every service it uses, AppSync Events included, exists
# there); linting against all regions would flag GovCloud/China, where it is not deployed.
LINT_REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-2"]


def test_template_passes_cfn_lint(synth: Synth) -> None:
    from cfnlint.api import lint

    matches = lint(synth.template_path.read_text(), regions=LINT_REGIONS)
    errors = [m for m in matches if m.rule.id.startswith("E")]
    assert errors == [], "\n".join(str(m) for m in errors)


# -- auth ------------------------------------------------------------------------------------------


def test_user_pool_is_invite_only_with_strong_passwords(synth: Synth) -> None:
    synth.template.has_resource_properties(
        "AWS::Cognito::UserPool",
        {
            "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True},
            "MfaConfiguration": "OPTIONAL",
            "Policies": {
                "PasswordPolicy": Match.object_like(
                    {
                        "MinimumLength": Match.any_value(),
                        "RequireLowercase": True,
                        "RequireUppercase": True,
                        "RequireNumbers": True,
                        "RequireSymbols": True,
                    }
                )
            },
        },
    )
    _, pool = synth.one("AWS::Cognito::UserPool")
    assert pool["Properties"]["Policies"]["PasswordPolicy"]["MinimumLength"] >= 12


def test_django_client_uses_code_flow_with_callbacks_under_the_django_url(synth: Synth) -> None:
    django_url = json.loads(CDK_JSON.read_text())["context"]["gateway:djangoUrl"]
    synth.template.has_resource_properties(
        "AWS::Cognito::UserPoolClient",
        {
            "GenerateSecret": True,
            "AllowedOAuthFlows": ["code"],
            "AllowedOAuthScopes": Match.array_with(["openid", "email"]),
            "CallbackURLs": [f"{django_url}/accounts/amazon-cognito/login/callback/"],
            "LogoutURLs": [f"{django_url}/"],
        },
    )
    synth.template.resource_count_is("AWS::Cognito::UserPoolDomain", 1)


def test_the_django_url_sets_the_cognito_urls_and_explicit_lists_win() -> None:
    from gateway_infra.config import ConfigError

    derived = GatewayConfig.from_context(cdk.App(context={"gateway:djangoUrl": "https://gw.example.com/"}).node)
    assert derived.callback_urls == ("https://gw.example.com/accounts/amazon-cognito/login/callback/",)
    assert derived.logout_urls == ("https://gw.example.com/",)
    explicit = GatewayConfig.from_context(
        cdk.App(context={"gateway:djangoUrl": "https://gw.example.com", "gateway:callbackUrls": "https://a/cb"}).node
    )
    assert explicit.callback_urls == ("https://a/cb",)
    assert explicit.logout_urls == ("https://gw.example.com/",)
    for wrong in ("http://gw.example.com", "gw.example.com", "https://gw.example.com/app"):
        with pytest.raises(ConfigError, match="gateway:djangoUrl"):
            GatewayConfig.from_context(cdk.App(context={"gateway:djangoUrl": wrong}).node)


# -- WAF ---------------------------------------------------------------------------------------------


def test_a_regional_web_acl_with_common_rules_and_a_per_ip_rate_limit_guards_the_events_api(synth: Synth) -> None:
    acl_id, acl = synth.one("AWS::WAFv2::WebACL")
    props = acl["Properties"]
    assert props["Scope"] == "REGIONAL"
    assert props["DefaultAction"] == {"Allow": {}}
    common, rate = sorted(props["Rules"], key=lambda rule: rule["Priority"])
    group = common["Statement"]["ManagedRuleGroupStatement"]
    assert (group["VendorName"], group["Name"], common["OverrideAction"]) == (
        "AWS",
        "AWSManagedRulesCommonRuleSet",
        {"None": {}},
    )
    # Body rules count only (chat bodies hold code and long histories); the rest block.
    counted = {o["Name"] for o in group["RuleActionOverrides"] if o["ActionToUse"] == {"Count": {}}}
    assert "CrossSiteScripting_BODY" in counted
    assert "SizeRestrictions_BODY" in counted
    assert all(name.endswith("_BODY") for name in counted)
    limit = rate["Statement"]["RateBasedStatement"]
    assert rate["Action"] == {"Block": {}}
    assert (limit["AggregateKeyType"], limit["Limit"], limit["EvaluationWindowSec"]) == ("IP", 2000, 300)
    # The chat handler's SigV4 publishes (a streamed answer is many) are not rate limited.
    signed = limit["ScopeDownStatement"]["NotStatement"]["Statement"]["ByteMatchStatement"]
    assert (signed["SearchString"], signed["PositionalConstraint"]) == ("AWS4-HMAC-SHA256", "STARTS_WITH")
    assert signed["FieldToMatch"] == {"SingleHeader": {"Name": "authorization"}}
    api_id, _ = synth.one("AWS::AppSync::Api")
    _, association = synth.one("AWS::WAFv2::WebACLAssociation")
    assert association["Properties"]["ResourceArn"] == {"Fn::GetAtt": [api_id, "ApiArn"]}
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}


def test_waf_limits_come_from_context_and_bad_values_stop_synth() -> None:
    from gateway_infra.config import ConfigError

    config = GatewayConfig.from_context(
        cdk.App(context={"gateway:wafRateLimit": "500", "gateway:wafRateWindowSeconds": "60"}).node
    )
    assert (config.waf_rate_limit, config.waf_rate_window_seconds) == (500, 60)
    with pytest.raises(ConfigError, match="gateway:wafRateLimit"):
        GatewayConfig.from_context(cdk.App(context={"gateway:wafRateLimit": "5"}).node)
    with pytest.raises(ConfigError, match=r"gateway:wafRateWindowSeconds.*60, 120, 300, 600"):
        GatewayConfig.from_context(cdk.App(context={"gateway:wafRateWindowSeconds": "90"}).node)


# -- events API ------------------------------------------------------------------------------------


def auth_types(modes: list[dict[str, str]]) -> list[str]:
    return [mode["AuthType"] for mode in modes]


def test_events_api_accepts_user_pool_and_iam_connections(synth: Synth) -> None:
    _, api = synth.one("AWS::AppSync::Api")
    config = api["Properties"]["EventConfig"]
    assert sorted(auth_types(config["AuthProviders"])) == ["AMAZON_COGNITO_USER_POOLS", "AWS_IAM"]
    assert sorted(auth_types(config["ConnectionAuthModes"])) == [
        "AMAZON_COGNITO_USER_POOLS",
        "AWS_IAM",
    ]
    assert config["LogConfig"]["LogLevel"] == "ERROR"


def namespace(synth: Synth, name: str) -> dict[str, Any]:
    found = [
        r["Properties"]
        for r in synth.resources("AWS::AppSync::ChannelNamespace").values()
        if r["Properties"]["Name"] == name
    ]
    assert len(found) == 1
    return found[0]


def data_source_function(synth: Synth, data_source_name: str) -> str:
    sources = [
        r["Properties"]
        for r in synth.resources("AWS::AppSync::DataSource").values()
        if r["Properties"]["Name"] == data_source_name
    ]
    assert len(sources) == 1
    assert sources[0]["Type"] == "AWS_LAMBDA"
    return sources[0]["LambdaConfig"]["LambdaFunctionArn"]["Fn::GetAtt"][0]


def test_inbound_users_publish_and_the_chat_handler_runs_asynchronously(synth: Synth) -> None:
    inbound = namespace(synth, "inbound")
    assert auth_types(inbound["PublishAuthModes"]) == ["AMAZON_COGNITO_USER_POOLS"]
    assert auth_types(inbound["SubscribeAuthModes"]) == ["AWS_IAM"]
    on_publish = inbound["HandlerConfigs"]["OnPublish"]
    assert on_publish["Behavior"] == "DIRECT"
    assert on_publish["Integration"]["LambdaConfig"]["InvokeType"] == "EVENT"
    function_id = data_source_function(synth, on_publish["Integration"]["DataSourceName"])
    assert synth.json["Resources"][function_id]["Properties"]["Handler"] == CHAT_HANDLER


def test_nobody_can_subscribe_to_inbound_past_the_authorizer(synth: Synth) -> None:
    # IAM is the only subscribe mode (no user qualifies), and a principal granted
    # EventSubscribe still meets the authorizer, which allows `/outbound/<own sub>` only.
    inbound = namespace(synth, "inbound")
    on_subscribe = inbound["HandlerConfigs"]["OnSubscribe"]
    assert on_subscribe["Behavior"] == "DIRECT"
    assert on_subscribe["Integration"]["LambdaConfig"]["InvokeType"] == "REQUEST_RESPONSE"
    function_id = data_source_function(synth, on_subscribe["Integration"]["DataSourceName"])
    assert synth.json["Resources"][function_id]["Properties"]["Handler"] == SUBSCRIBE_AUTHORIZER_HANDLER


def test_outbound_only_iam_publishes_and_subscribes_are_authorized(synth: Synth) -> None:
    outbound = namespace(synth, "outbound")
    assert auth_types(outbound["PublishAuthModes"]) == ["AWS_IAM"]
    assert auth_types(outbound["SubscribeAuthModes"]) == ["AMAZON_COGNITO_USER_POOLS"]
    on_subscribe = outbound["HandlerConfigs"]["OnSubscribe"]
    assert on_subscribe["Behavior"] == "DIRECT"
    # The authorizer's answer decides the subscribe, so the call must be synchronous.
    assert on_subscribe["Integration"]["LambdaConfig"]["InvokeType"] == "REQUEST_RESPONSE"
    function_id = data_source_function(synth, on_subscribe["Integration"]["DataSourceName"])
    assert (
        synth.json["Resources"][function_id]["Properties"]["Handler"]
        == SUBSCRIBE_AUTHORIZER_HANDLER
    )
    assert "OnPublish" not in outbound["HandlerConfigs"]


def test_only_the_chat_handler_role_may_publish_and_only_to_outbound(synth: Synth) -> None:
    publishers = [
        (policy_id, statement)
        for policy_id, statement in iter_statements(synth)
        if "appsync:EventPublish" in as_list(statement["Action"])
    ]
    assert len(publishers) == 1
    policy_id, statement = publishers[0]
    assert "ChatHandler" in policy_id
    namespace_id = statement["Resource"]["Fn::GetAtt"][0]
    assert statement["Resource"]["Fn::GetAtt"][1] == "ChannelNamespaceArn"
    assert synth.json["Resources"][namespace_id]["Properties"]["Name"] == "outbound"


# -- functions -------------------------------------------------------------------------------------


def function(synth: Synth, handler: str) -> dict[str, Any]:
    found = [
        r["Properties"]
        for r in synth.resources("AWS::Lambda::Function").values()
        if r["Properties"].get("Handler") == handler
    ]
    assert len(found) == 1, f"no single function with handler {handler}"
    return found[0]


@pytest.mark.parametrize(
    ("handler", "memory", "timeout"),
    [(CHAT_HANDLER, 512, 300), (SUBSCRIBE_AUTHORIZER_HANDLER, 128, 5)],
)
def test_handlers_run_python_312_on_arm(synth: Synth, handler: str, memory: int, timeout: int) -> None:
    props = function(synth, handler)
    assert props["Runtime"] == "python3.12"
    assert props["Architectures"] == ["arm64"]
    assert props["MemorySize"] == memory
    assert props["Timeout"] == timeout
    assert props["TracingConfig"] == {"Mode": "Active"}
    # Powertools, from the public layer; the chat handler adds the detector's libraries.
    assert len(props["Layers"]) == (2 if handler == CHAT_HANDLER else 1)
    log_group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
    assert synth.json["Resources"][log_group_id]["Properties"]["RetentionInDays"] == 30


# What the settings table says the stack sets for the chat Lambda.
CHAT_ENV_NAMES = [setting.name for setting in DATA_PLANE_SETTINGS if setting.stack is not None]


def test_chat_handler_environment_names_and_fixed_values(synth: Synth) -> None:
    env = function(synth, CHAT_HANDLER)["Environment"]["Variables"]
    assert sorted(env) == sorted(CHAT_ENV_NAMES)
    assert env["GATEWAY_STORE"] == "dynamodb"
    assert env["GATEWAY_TELEMETRY_SINK"] == "stdout,firehose"
    assert env["GATEWAY_METRICS_NAMESPACE"] == "AIGateway"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "AIGateway"
    assert env["GATEWAY_MONTH_TIMEZONE"] == "UTC"
    tables = {k: ref(k) for k in synth.resources("AWS::DynamoDB::Table")}
    assert env["GATEWAY_POLICIES_TABLE"] in tables.values()
    assert "Policies" in env["GATEWAY_POLICIES_TABLE"]["Ref"]
    assert "Usage" in env["GATEWAY_USAGE_TABLE"]["Ref"]
    assert "Cache" in env["GATEWAY_CACHE_TABLE"]["Ref"]
    stream_id, _ = synth.one("AWS::KinesisFirehose::DeliveryStream")
    assert env["GATEWAY_FIREHOSE_STREAM"] == ref(stream_id)
    endpoint = env["GATEWAY_EVENTS_HTTP_ENDPOINT"]["Fn::Join"][1]
    assert endpoint[0] == "https://"
    assert endpoint[-1] == "/event"
    assert endpoint[1]["Fn::GetAtt"][1] == "Dns.Http"


def test_data_plane_reads_every_variable_the_stack_sets() -> None:
    # Each GATEWAY_* value the stack sets must land in the data plane's config (the Powertools
    # ones are read by Powertools); a name the config ignored would be silently lost.
    names = [name for name in CHAT_ENV_NAMES if name.startswith("GATEWAY_")]
    values = {name: f"value-of-{name.lower()}" for name in names} | {
        "GATEWAY_STORE": "dynamodb", "GATEWAY_TELEMETRY_SINK": "firehose", "GATEWAY_MONTH_TIMEZONE": "Asia/Seoul",
    }
    config = DataPlaneConfig.from_mapping(values)
    read = {str(value) for value in vars(config).values()} | set(config.telemetry_sinks)
    assert [name for name in names if values[name] not in read] == []


def test_chat_turns_are_never_retried_by_lambda(synth: Synth) -> None:
    synth.template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 120},
    )


def test_failed_chat_invocations_land_in_an_encrypted_queue_that_raises_an_alarm(synth: Synth) -> None:
    queue_id, queue = synth.one("AWS::SQS::Queue", "FailedChatInvocations")
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    _, invoke_config = synth.one("AWS::Lambda::EventInvokeConfig")
    destination = invoke_config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination == {"Fn::GetAtt": [queue_id, "Arn"]}
    _, queue_policy = synth.one("AWS::SQS::QueuePolicy")
    denies = [s for s in queue_policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert denies
    assert denies[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    watching = [
        a["Properties"] for a in synth.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
    ]
    assert len(watching) == 1
    assert watching[0]["Dimensions"][0]["Value"] == {"Fn::GetAtt": [queue_id, "QueueName"]}
    assert watching[0]["Threshold"] == 1


def test_chat_concurrency_is_the_accounts_pool_unless_context_reserves_some(synth: Synth) -> None:
    assert "ReservedConcurrentExecutions" not in function(synth, CHAT_HANDLER)
    app = cdk.App(context={"gateway:chatReservedConcurrency": "25"})
    assert GatewayConfig.from_context(app.node).chat_reserved_concurrency == 25


@pytest.mark.parametrize("handler", [CHAT_HANDLER, SUBSCRIBE_AUTHORIZER_HANDLER])
def test_handler_paths_name_functions_the_data_plane_defines(handler: str) -> None:
    # What the Lambda runtime does with the handler string: import the module, call the name.
    module, _, attribute = handler.rpartition(".")
    entry = getattr(importlib.import_module(module), attribute, None)
    assert callable(entry), f"{handler} is not a function the module defines"
    assert list(inspect.signature(entry).parameters)[:2] == ["event", "context"]


def test_lambda_asset_bundles_only_the_dataplane_package(synth: Synth) -> None:
    code = function(synth, CHAT_HANDLER)["Code"]
    asset_hash = code["S3Key"].removesuffix(".zip")
    asset_dir = Path(synth.assembly.directory) / f"asset.{asset_hash}"
    assert sorted(p.name for p in asset_dir.iterdir()) == ["dataplane"]
    bundled = [p for p in asset_dir.rglob("*") if p.is_file()]
    bytecode = [str(p) for p in bundled if p.suffix == ".pyc" or "__pycache__" in p.parts]
    assert bundled
    assert bytecode == []
    assert (asset_dir / "dataplane" / "telemetry" / "schema.py").exists()


def dependencies_layer(synth: Synth) -> dict[str, Any]:
    """The chat handler's own layer (the other one is Powertools, by its public ARN)."""
    refs = {
        layer["Ref"] for layer in function(synth, CHAT_HANDLER)["Layers"] if isinstance(layer, dict) and "Ref" in layer
    }
    own = [synth.json["Resources"][ref] for ref in refs if ref in synth.json["Resources"]]
    assert len(own) == 1
    assert own[0]["Type"] == "AWS::Lambda::LayerVersion"
    return own[0]


def test_the_chat_handler_layer_holds_the_detector_libraries_at_their_pins(synth: Synth) -> None:
    from gateway_infra.dependencies import pinned_versions

    layer = dependencies_layer(synth)
    asset_dir = Path(synth.assembly.directory) / f"asset.{layer['Properties']['Content']['S3Key'].removesuffix('.zip')}"
    python = asset_dir / "python"
    assert (python / "phonenumbers" / "phonenumbermatcher.py").exists()
    assert (python / "stdnum" / "kr" / "rrn.py").exists()
    assert (python / "stdnum" / "iban.py").exists()
    pins = pinned_versions()
    assert (python / f"phonenumberslite-{pins['phonenumberslite']}.dist-info").is_dir()
    assert (python / f"python_stdnum-{pins['python-stdnum']}.dist-info").is_dir()
    assert not [p for p in python.rglob("*") if p.suffix == ".pyc" or p.name == "__pycache__"]
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]


def test_the_privacy_module_imports_from_the_asset_and_layer_alone(synth: Synth, tmp_path: Path) -> None:
    """What the Lambda imports resolves from the zip and the layer, not from this venv."""
    import subprocess
    import sys

    layer = dependencies_layer(synth)
    layer_python = (
        Path(synth.assembly.directory)
        / f"asset.{layer['Properties']['Content']['S3Key'].removesuffix('.zip')}"
        / "python"
    )
    code_dir = (
        Path(synth.assembly.directory) / f"asset.{function(synth, CHAT_HANDLER)['Code']['S3Key'].removesuffix('.zip')}"
    )
    probe = ("import sys; sys.path[:] = [p for p in sys.path if 'site-packages' not in p] + sys.argv[1:]; "
             "from dataplane.privacy import pii_kinds; print(pii_kinds('call 010-1234-5678'))")
    result = subprocess.run([sys.executable, "-S", "-c", probe, str(code_dir), str(layer_python)],
                            check=False, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['phone']"


def test_a_dependency_at_another_version_stops_the_synth(tmp_path: Path, monkeypatch) -> None:
    from gateway_infra import dependencies

    monkeypatch.setattr(dependencies, "pinned_versions", lambda: {"phonenumberslite": "0.0.1", "python-stdnum": "2.2"})
    with pytest.raises(dependencies.DependencyError, match=r"requirements\.txt pins 0\.0\.1"):
        dependencies.build_layer_directory(tmp_path / "layer")


# -- guardrail -------------------------------------------------------------------------------------


def test_the_default_guardrail_filters_content_prompt_attacks_and_personal_data(synth: Synth) -> None:
    guardrail_id, guardrail = synth.one("AWS::Bedrock::Guardrail")
    props = guardrail["Properties"]
    filters = {
        f["Type"]: (f["InputStrength"], f["OutputStrength"]) for f in props["ContentPolicyConfig"]["FiltersConfig"]
    }
    assert filters["PROMPT_ATTACK"] == ("HIGH", "NONE")
    assert {"HATE", "INSULTS", "SEXUAL", "VIOLENCE", "MISCONDUCT"} <= set(filters)
    pii = {e["Type"]: e["Action"] for e in props["SensitiveInformationPolicyConfig"]["PiiEntitiesConfig"]}
    assert pii["NAME"] == pii["ADDRESS"] == pii["EMAIL"] == pii["PHONE"] == "ANONYMIZE"
    assert pii["AWS_SECRET_KEY"] == "BLOCK"
    regexes = {r["Name"] for r in props["SensitiveInformationPolicyConfig"]["RegexesConfig"]}
    assert "KR_RESIDENT_NUMBER" in regexes
    from dataplane.providers.base import GUARDRAIL_BLOCKED_MESSAGE

    assert props["BlockedInputMessaging"] == props["BlockedOutputsMessaging"] == GUARDRAIL_BLOCKED_MESSAGE
    version_id, version = synth.one("AWS::Bedrock::GuardrailVersion")
    assert version["Properties"]["GuardrailIdentifier"] == {"Fn::GetAtt": [guardrail_id, "GuardrailId"]}
    env = function(synth, CHAT_HANDLER)["Environment"]["Variables"]
    assert env["GATEWAY_GUARDRAIL_ID"] == {"Fn::GetAtt": [guardrail_id, "GuardrailId"]}
    assert env["GATEWAY_GUARDRAIL_VERSION"] == {"Fn::GetAtt": [version_id, "Version"]}


def test_a_guardrail_change_publishes_a_new_version(monkeypatch) -> None:
    from gateway_infra import guardrail

    before = guardrail.configuration_digest()
    monkeypatch.setattr(guardrail, "PII_ACTIONS", {**guardrail.PII_ACTIONS, "NAME": "BLOCK"})
    assert guardrail.configuration_digest() != before


def test_the_chat_role_may_apply_guardrails_of_this_account_only(synth: Synth) -> None:
    statements = [
        s for p in synth.resources("AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"] if s.get("Sid") == "Guardrails"
    ]
    assert len(statements) == 1
    assert statements[0]["Action"] == "bedrock:ApplyGuardrail"
    assert ":guardrail/*" in json.dumps(statements[0]["Resource"])


# -- tables ----------------------------------------------------------------------------------------


def table(synth: Synth, name: str) -> dict[str, Any]:
    _, resource = synth.one("AWS::DynamoDB::Table", f"Tables{name}")
    return resource


def test_ttl_attribute_is_the_one_the_dynamodb_store_writes() -> None:
    from dataplane.stores.dynamodb import TTL_ATTRIBUTE as STORE_TTL_ATTRIBUTE

    assert TTL_ATTRIBUTE == STORE_TTL_ATTRIBUTE == "expires_at"


@pytest.mark.parametrize(
    ("name", "keys", "ttl", "pitr"),
    [
        ("Policies", [("pk", "HASH")], False, True),
        ("Usage", [("pk", "HASH"), ("sk", "RANGE")], True, False),
        ("Cache", [("pk", "HASH")], True, False),
    ],
)
def test_tables(synth: Synth, name: str, keys: list[tuple[str, str]], ttl: bool, pitr: bool) -> None:
    resource = table(synth, name)
    props = resource["Properties"]
    assert [(k["AttributeName"], k["KeyType"]) for k in props["KeySchema"]] == keys
    assert all(a["AttributeType"] == "S" for a in props["AttributeDefinitions"])
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["SSESpecification"] == {"SSEEnabled": True}  # AWS-managed KMS key
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is pitr
    if ttl:
        assert props["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    else:
        assert "TimeToLiveSpecification" not in props
    # cdk.json keeps data by default: deletion protection on, and `cdk destroy` retains.
    assert props["DeletionProtectionEnabled"] is True
    assert resource["DeletionPolicy"] == "Retain"


# -- lake ------------------------------------------------------------------------------------------


def test_firehose_converts_to_parquet_and_partitions_by_the_records_own_day(synth: Synth) -> None:
    _, stream = synth.one("AWS::KinesisFirehose::DeliveryStream")
    props = stream["Properties"]
    assert props["DeliveryStreamType"] == "DirectPut"
    s3_config = props["ExtendedS3DestinationConfiguration"]
    assert s3_config["Prefix"] == "lake/requests/dt=!{partitionKeyFromQuery:dt}/"
    assert "!{firehose:error-output-type}" in s3_config["ErrorOutputPrefix"]
    assert s3_config["BufferingHints"] == {"IntervalInSeconds": 300, "SizeInMBs": 64}
    # Dynamic partitioning on `ts`: the first 10 characters of "2026-11-29 05:12:03.123".
    assert s3_config["DynamicPartitioningConfiguration"] == {"Enabled": True}
    (processor,) = s3_config["ProcessingConfiguration"]["Processors"]
    params = {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}
    assert processor["Type"] == "MetadataExtraction"
    assert params["MetadataExtractionQuery"] == '{"dt":.ts[0:10]}'  # a JQ object, not JSON
    assert params["JsonParsingEngine"] == "JQ-1.6"
    # Parquet with the requests table's schema; no S3-level compression on top of Parquet's.
    conversion = s3_config["DataFormatConversionConfiguration"]
    assert conversion["Enabled"] is True
    assert conversion["InputFormatConfiguration"]["Deserializer"] == {"OpenXJsonSerDe": {}}
    assert "ParquetSerDe" in conversion["OutputFormatConfiguration"]["Serializer"]
    table_id, _ = synth.one("AWS::Glue::Table", "Requests")
    assert conversion["SchemaConfiguration"]["TableName"] == {"Ref": table_id}
    assert s3_config.get("CompressionFormat", "UNCOMPRESSED") == "UNCOMPRESSED"


def test_the_partition_query_cuts_the_lake_timestamp_to_its_day() -> None:
    from gateway_infra.lake import partition_query

    from dataplane.telemetry.schema import format_lake_timestamp, partition_value

    moment = datetime(2026, 11, 29, 23, 59, 59, 999000, tzinfo=UTC)
    stamp = format_lake_timestamp(moment)
    ((key, query),) = partition_query().items()
    bounds = re.fullmatch(r"\.ts\[(\d+):(\d+)\]", query)
    assert bounds is not None, query
    start, end = (int(n) for n in bounds.groups())
    assert (key, stamp[start:end]) == ("dt", partition_value(moment)) == ("dt", "2026-11-29")


def glue_table_input(synth: Synth, name: str = "Requests") -> dict[str, Any]:
    _, resource = synth.one("AWS::Glue::Table", name)
    return resource["Properties"]["TableInput"]


def test_glue_projection_template_is_the_firehose_prefix(synth: Synth) -> None:
    _, stream = synth.one("AWS::KinesisFirehose::DeliveryStream")
    firehose_prefix = stream["Properties"]["ExtendedS3DestinationConfiguration"]["Prefix"]
    template = glue_table_input(synth)["Parameters"]["storage.location.template"]
    parts = template["Fn::Join"][1]
    assert parts[0] == "s3://"
    assert "Ref" in parts[1]
    projected_path = parts[2].lstrip("/")
    # Firehose's partition keys, written as Athena's projection placeholders.
    as_placeholders = re.sub(
        r"(\w+)=!\{partitionKeyFromQuery:(\w+)\}", lambda m: f"{m.group(1)}=${{{m.group(2)}}}", firehose_prefix
    )
    assert projected_path == as_placeholders
    params = glue_table_input(synth)["Parameters"]
    assert params["projection.enabled"] == "true"
    # One date-typed projection: Athena prunes it from `dt BETWEEN '…' AND '…'` on the string.
    assert params["projection.dt.type"] == "date"
    assert params["projection.dt.format"] == "yyyy-MM-dd"
    assert params["projection.dt.range"].endswith(",NOW")
    assert (params["projection.dt.interval"], params["projection.dt.interval.unit"]) == ("1", "DAYS")


def test_glue_columns_are_the_lake_schema_in_parquet(synth: Synth) -> None:
    table_input = glue_table_input(synth)
    columns = table_input["StorageDescriptor"]["Columns"]
    assert [(c["Name"], c["Type"]) for c in columns] == [(n, t) for n, t, _ in LAKE_COLUMNS]
    assert [(k["Name"], k["Type"]) for k in table_input["PartitionKeys"]] == list(PARTITION_KEYS)
    serde = table_input["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"]
    assert serde == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert table_input["StorageDescriptor"]["InputFormat"].endswith("MapredParquetInputFormat")
    location = table_input["StorageDescriptor"]["Location"]["Fn::Join"][1]
    assert location[-1] == f"/{LAKE_PREFIX}"


@pytest.mark.parametrize(("table", "construct"), [("users", "Users"), ("group_members", "GroupMembers")])
def test_the_directory_tables_read_what_django_publishes(synth: Synth, table: str, construct: str) -> None:
    from dataplane.telemetry.schema import DIRECTORY_TABLES, directory_object_key

    table_input = glue_table_input(synth, construct)
    assert table_input["Name"] == table
    columns = table_input["StorageDescriptor"]["Columns"]
    assert [c["Name"] for c in columns] == list(DIRECTORY_TABLES[table])
    assert table_input["Parameters"]["skip.header.line.count"] == "1"
    location = table_input["StorageDescriptor"]["Location"]["Fn::Join"][1]
    # Django's `GATEWAY_LAKE_PREFIX` ("lake/") + the object key's folder.
    assert location[-1] == "/lake/" + directory_object_key(table).rsplit("/", 1)[0] + "/"


def test_athena_workgroup_enforces_encrypted_results_and_a_scan_cap(synth: Synth) -> None:
    _, workgroup = synth.one("AWS::Athena::WorkGroup")
    config = workgroup["Properties"]["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["BytesScannedCutoffPerQuery"] == 10 * 1024**3
    result = config["ResultConfiguration"]
    assert result["EncryptionConfiguration"] == {"EncryptionOption": "SSE_S3"}
    output = result["OutputLocation"]["Fn::Join"][1]
    assert "AthenaResultsBucket" in output[1]["Ref"]


def test_every_bucket_is_private_encrypted_and_tls_only(synth: Synth) -> None:
    buckets = synth.resources("AWS::S3::Bucket")
    assert len(buckets) == 3  # lake, Athena results, access logs
    for bucket_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, bucket_id
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"], bucket_id
        assert props["LifecycleConfiguration"]["Rules"], bucket_id
    tls_denied = {
        policy["Properties"]["Bucket"]["Ref"]
        for policy in synth.resources("AWS::S3::BucketPolicy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny"
        and statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
    }
    assert tls_denied == set(buckets)


# -- monitoring ------------------------------------------------------------------------------------


def test_the_dashboard_knows_every_metric_the_data_plane_writes() -> None:
    from dataplane.telemetry.emf import METRIC_UNITS

    assert set(METRIC_UNITS) == set(GATEWAY_METRICS)


def test_dashboard_charts_every_gateway_metric(synth: Synth) -> None:
    _, dashboard = synth.one("AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in GATEWAY_METRICS:
        assert f'MetricName=\\\\\\"{metric}\\\\\\"' in body, metric
    assert "AIGateway" in body
    assert "ModelId" in body


def test_alarms_watch_errors_throttling_and_refusals_and_notify_an_encrypted_topic(
    synth: Synth,
) -> None:
    alarms = synth.resources("AWS::CloudWatch::Alarm").values()
    expressions = {
        metric["Expression"]
        for alarm in alarms
        for metric in alarm["Properties"].get("Metrics", [])
        if "Expression" in metric
    }
    assert 'SELECT SUM("ModelThrottled") FROM "AIGateway"' in expressions
    assert 'SELECT SUM("Refusals") FROM "AIGateway"' in expressions
    # What the chat handler counts when a publish fails outside a turn (Lambda drops the
    # return value of an asynchronous invocation, so this metric is how it shows).
    from dataplane.handlers.appsync_chat import FAILURE_METRIC

    assert f'SELECT SUM("{FAILURE_METRIC}") FROM "AIGateway"' in expressions  # noqa: S608 - an expected string
    lambda_error_alarms = [
        a for a in alarms if a["Properties"].get("Namespace") == "AWS/Lambda"
        and a["Properties"]["MetricName"] == "Errors"
    ]
    assert len(lambda_error_alarms) == 2
    topic_id, topic = synth.one("AWS::SNS::Topic", "AlarmTopic")
    assert "KmsMasterKeyId" in topic["Properties"]
    assert all(a["Properties"]["AlarmActions"] == [ref(topic_id)] for a in alarms)


# -- IAM -------------------------------------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def iter_statements(synth: Synth) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every identity-policy statement in the template (inline, default and managed)."""
    for logical_id, resource in synth.json["Resources"].items():
        props = resource.get("Properties", {})
        documents = []
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents.append(props["PolicyDocument"])
        if resource["Type"] == "AWS::IAM::Role":
            documents += [p["PolicyDocument"] for p in props.get("Policies", [])]
        for document in documents:
            for statement in as_list(document["Statement"]):
                yield logical_id, statement


def test_no_identity_policy_grants_star_resources_except_unscopable_actions(synth: Synth) -> None:
    offenders = [
        (policy_id, statement["Action"])
        for policy_id, statement in iter_statements(synth)
        if statement["Effect"] == "Allow"
        and "*" in as_list(statement.get("Resource", []))
        and not set(as_list(statement["Action"])) <= UNSCOPABLE_ACTIONS
    ]
    assert offenders == []
    assert not any(
        action == "*" or action.endswith(":*")
        for _, statement in iter_statements(synth)
        for action in as_list(statement["Action"])
    )


# -- outputs and config ----------------------------------------------------------------------------


def test_outputs_are_the_django_env_keys(synth: Synth) -> None:
    outputs = synth.json["Outputs"]
    for env_name in ENV_OUTPUTS:
        assert outputs[output_id(env_name)]["Description"] == env_name
    fake_deployed = {output_id(name): f"value-of-{name}" for name in ENV_OUTPUTS}
    assert env_lines(fake_deployed)[0] == "GATEWAY_POLICIES_TABLE=value-of-GATEWAY_POLICIES_TABLE"
    assert len(env_lines(fake_deployed)) == len(ENV_OUTPUTS)


def test_context_values_from_the_command_line_are_parsed() -> None:
    assert _as_bool("false") is False
    assert _as_bool(True) is True
    assert _as_list("eu-west-1, eu-central-1") == ("eu-west-1", "eu-central-1")
    assert _as_list('["https://a/cb"]') == ("https://a/cb",)
    app = cdk.App(
        context={
            "gateway:retainData": "false",
            "gateway:bedrockInferenceRegions": "us-east-2,us-west-2",
            "gateway:bedrockGlobalInference": "false",
        }
    )
    config = GatewayConfig.from_context(app.node)
    assert config.retain_data is False
    assert config.bedrock_inference_regions == ("us-east-2", "us-west-2")
    assert config.bedrock_global_inference is False
    # The older key still works; with neither, any region and global profiles are allowed.
    legacy = GatewayConfig.from_context(cdk.App(context={"gateway:bedrockExtraRegions": "eu-west-3"}).node)
    assert legacy.bedrock_inference_regions == ("eu-west-3",)
    default = GatewayConfig.from_context(cdk.App().node)
    assert (default.bedrock_inference_regions, default.bedrock_global_inference) == (("*",), True)


def test_an_unknown_month_time_zone_stops_synth_with_the_key_in_the_message() -> None:
    from gateway_infra.config import ConfigError

    app = cdk.App(context={"gateway:monthTimezone": "Europe/Atlantis"})
    with pytest.raises(ConfigError, match=r"gateway:monthTimezone.*'Europe/Atlantis'"):
        GatewayConfig.from_context(app.node)
    ok = GatewayConfig.from_context(cdk.App(context={"gateway:monthTimezone": "Europe/Berlin"}).node)
    assert ok.month_timezone == "Europe/Berlin"


def test_month_time_zone_is_a_stack_output_for_django(synth: Synth) -> None:
    output = synth.json["Outputs"][output_id("GATEWAY_MONTH_TIMEZONE")]
    assert output["Value"] == json.loads(CDK_JSON.read_text())["context"]["gateway:monthTimezone"]
    lines = env_lines({output_id("GATEWAY_MONTH_TIMEZONE"): "Europe/Berlin"})
    assert lines == ["GATEWAY_MONTH_TIMEZONE=Europe/Berlin"]


def test_cognito_domain_prefix_is_derived_from_the_stack_name(synth: Synth) -> None:
    from gateway_infra.auth import default_domain_prefix

    _, domain = synth.one("AWS::Cognito::UserPoolDomain")
    assert domain["Properties"]["Domain"] == {
        "Fn::Join": ["", [f"{synth.stack_name.lower()}-", {"Ref": "AWS::AccountId"}]]
    }
    # Two stacks in one account and region (dev beside prod) get different prefixes; Cognito's
    # reserved words and characters it refuses are dropped.
    stack = cdk.Stack(cdk.App(), "Probe")
    prefixes = {
        name: stack.resolve(default_domain_prefix(name))["Fn::Join"][1][0]
        for name in ("AIGatewayDev", "AIGatewayProd", "Amazon_AWS-Cognito-Gateway")
    }
    assert prefixes == {
        "AIGatewayDev": "aigatewaydev-",
        "AIGatewayProd": "aigatewayprod-",
        "Amazon_AWS-Cognito-Gateway": "gateway-",
    }


def test_an_explicit_cognito_domain_prefix_wins() -> None:
    context = {**json.loads(CDK_JSON.read_text())["context"], "gateway:cognitoDomainPrefix": "acme-chat"}
    synth = Synth(context)
    _, domain = synth.one("AWS::Cognito::UserPoolDomain")
    assert domain["Properties"]["Domain"] == "acme-chat"


def test_budget_alerts_have_an_encrypted_topic_django_may_publish_to(synth) -> None:
    topic_id, topic = synth.one("AWS::SNS::Topic", "BudgetAlerts")
    assert "KmsMasterKeyId" in topic["Properties"]  # the AWS-managed SNS key
    policies = synth.resources("AWS::IAM::ManagedPolicy")
    control_plane = next(p for k, p in policies.items() if k.startswith("ControlPlanePolicy"))
    statements = control_plane["Properties"]["PolicyDocument"]["Statement"]
    publish = [s for s in statements if s["Action"] == "sns:Publish"]
    assert [s["Resource"] for s in publish] == [{"Ref": topic_id}]
    outputs = synth.json["Outputs"]
    assert outputs["GATEWAYBUDGETALERTSTOPICARN"]["Value"] == {"Ref": topic_id}
