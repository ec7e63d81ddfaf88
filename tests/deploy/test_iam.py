"""IAM is derived from the code: what each role's code calls is what its policy allows.

Three sides must agree: the calls in the code (read from the source), the needs the code
declares (`dataplane.permissions` vocabulary), and the statements in the synthesized template
(evaluated with the twin's IAM evaluator). A call without a declaration, a declaration without
a call, or a grant beyond the declarations each fails here.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from gateway_infra.permissions import role_needs, statement_id

from analytics.permissions import REPORT_ENGINE_NEEDS
from dataplane.permissions import Need, Resource, Role, actions_by_resource
from dataplane.roles import CHAT_TURN_STORE_OPERATIONS
from dataplane.stores.dynamodb import STORE_OPERATION_NEEDS
from quotas.permissions import CONTROL_PLANE_STORE_OPERATIONS
from tests.aws.iam import ALLOWED, evaluate
from tests.aws.template import Template
from tests.aws.twin import TwinResources, template_principals, template_resources
from tests.deploy.synth import REPO_ROOT, Synth

# What the Lambda runtime (logs) and active tracing (X-Ray) do with the role; no code of ours
# calls these, CDK grants them with the function.
# What the Lambda service does with the function's role, not the code: logs, traces, and the
# hand-over of a failed asynchronous invocation to its on-failure queue.
PLATFORM_ACTIONS = {
    "logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
    "sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl",
}


@pytest.fixture
def template(stack_synth: Synth) -> Template:
    return Template(stack_synth.json, stack_name=stack_synth.stack_name)


def declared(role: Role) -> dict[Resource, tuple[str, ...]]:
    return actions_by_resource(role_needs(role))


def granted_statements(template: Template, role: Role) -> list[dict]:
    return template_principals(template)[role.value].statements


# -- the template grants exactly the declarations ------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_each_resource_statement_holds_exactly_the_declared_actions(template: Template, role: Role) -> None:
    statements = {s.get("Sid"): s for s in granted_statements(template, role)}
    for resource, actions in declared(role).items():
        statement = statements[statement_id(resource)]
        granted = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert sorted(granted) == list(actions), resource


@pytest.mark.parametrize("role", list(Role))
def test_no_role_is_granted_an_action_no_code_declares(template: Template, role: Role) -> None:
    declared_actions = {action for actions in declared(role).values() for action in actions}
    granted = {
        action
        for statement in granted_statements(template, role)
        for action in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    }
    assert granted - declared_actions - PLATFORM_ACTIONS == set()
    assert declared_actions <= granted


def sample_arns(resources: TwinResources, template: Template) -> dict[Resource, str]:
    """One concrete ARN per resource, as a call at run time would name it."""
    region, account = template.region, template.account
    table = {r: f"arn:aws:dynamodb:{region}:{account}:table/{name}" for r, name in (
        (Resource.POLICIES_TABLE, resources.policies_table),
        (Resource.USAGE_TABLE, resources.usage_table),
        (Resource.CACHE_TABLE, resources.cache_table),
    )}
    return {
        **table,
        Resource.REQUEST_STREAM: f"arn:aws:firehose:{region}:{account}:deliverystream/{resources.delivery_stream}",
        Resource.MODELS: f"arn:aws:bedrock:{region}::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0",
        Resource.GUARDRAILS: f"arn:aws:bedrock:{region}:{account}:guardrail/gr7abc123",
        Resource.OUTBOUND_NAMESPACE: resources.outbound_namespace_arn,
        Resource.REPORT_WORKGROUP: f"arn:aws:athena:{region}:{account}:workgroup/{resources.workgroup}",
        Resource.LAKE_CATALOG: f"arn:aws:glue:{region}:{account}:table/{resources.database}/requests",
        Resource.LAKE_BUCKETS: f"arn:aws:s3:::{resources.lake_bucket}",
        Resource.REQUEST_LOG_OBJECTS: f"arn:aws:s3:::{resources.lake_bucket}/lake/requests/dt=2026-11-29/x.parquet",
        Resource.DIRECTORY_OBJECTS: f"arn:aws:s3:::{resources.lake_bucket}/lake/group_members/group_members.csv",
        Resource.QUERY_RESULT_OBJECTS: f"arn:aws:s3:::{resources.results_bucket}/athena-results/q-1.csv",
        Resource.BUDGET_ALERTS_TOPIC: template.ref(
            next(k for k in template.of_type("AWS::SNS::Topic") if k.startswith("BudgetAlerts"))
        ),
    }


@pytest.mark.parametrize("role", list(Role))
def test_every_declared_need_is_allowed_by_the_synthesized_policy(template: Template, role: Role) -> None:
    statements = granted_statements(template, role)
    arns = sample_arns(template_resources(template), template)
    refused = [
        (action, arns[resource])
        for resource, actions in declared(role).items()
        for action in actions
        if evaluate(statements, action, arns[resource]) != ALLOWED
    ]
    assert refused == []


def test_the_chat_role_cannot_touch_what_only_django_needs(template: Template) -> None:
    statements = granted_statements(template, Role.CHAT_HANDLER)
    arns = sample_arns(template_resources(template), template)
    for action, resource in (
        ("dynamodb:Scan", Resource.POLICIES_TABLE),
        ("dynamodb:PutItem", Resource.POLICIES_TABLE),
        ("dynamodb:DeleteItem", Resource.USAGE_TABLE),
        ("athena:StartQueryExecution", Resource.REPORT_WORKGROUP),
    ):
        assert evaluate(statements, action, arns[resource]) != ALLOWED, action


# -- the declarations are the calls the code makes -----------------------------------------------


def client_methods(tree: ast.AST) -> set[str]:
    """`…client.<method>(` calls: the boto3 operations a module makes."""
    return {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and (
            (isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "client")
            or (isinstance(node.func.value, ast.Name) and node.func.value.id == "client")
        )
        and node.func.attr not in ("get_waiter",)
    }


def iam_action(prefix: str, method: str) -> str:
    return f"{prefix}:" + "".join(part.capitalize() for part in method.split("_"))


def parse(relative: str) -> ast.Module:
    return ast.parse((REPO_ROOT / relative).read_text())


TABLE_ATTRIBUTES = {
    "policies_table": Resource.POLICIES_TABLE,
    "usage_table": Resource.USAGE_TABLE,
    "cache_table": Resource.CACHE_TABLE,
}
TRANSACT_ITEM_ACTIONS = {"Update": "dynamodb:UpdateItem", "Put": "dynamodb:PutItem", "Delete": "dynamodb:DeleteItem",
                         "ConditionCheck": "dynamodb:ConditionCheckItem"}


def store_calls_by_operation() -> dict[str, set[tuple[Resource, str]]]:
    """For each DynamoDBStore method: the (table, IAM action) pairs its code can reach."""
    module = parse("dataplane/stores/dynamodb.py")
    store = next(n for n in module.body if isinstance(n, ast.ClassDef) and n.name == "DynamoDBStore")
    methods = {n.name: n for n in store.body if isinstance(n, ast.FunctionDef)}

    def reachable(name: str, seen: set[str]) -> set[str]:
        seen.add(name)
        for node in ast.walk(methods[name]):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "self"
                and node.attr in methods
                and node.attr not in seen
            ):
                reachable(node.attr, seen)
        return seen

    calls = {}
    for operation in STORE_OPERATION_NEEDS:
        bodies = [methods[name] for name in reachable(operation, set())]
        tables = {
            TABLE_ATTRIBUTES[n.attr] for body in bodies for n in ast.walk(body)
            if isinstance(n, ast.Attribute) and n.attr in TABLE_ATTRIBUTES
        }
        actions = set()
        for body in bodies:
            for method in client_methods(body):
                if method == "transact_write_items":  # authorised through its items' kinds
                    actions |= {
                        TRANSACT_ITEM_ACTIONS[key.value] for b in bodies for n in ast.walk(b) if isinstance(n, ast.Dict)
                        for key in n.keys
                        if isinstance(key, ast.Constant) and isinstance(key.value, str)
                        and key.value in TRANSACT_ITEM_ACTIONS
                    }
                else:
                    actions.add(iam_action("dynamodb", method))
        calls[operation] = {(table, action) for table in tables for action in actions}
    return calls


def pairs(needs: tuple[Need, ...]) -> set[tuple[Resource, str]]:
    return {(n.resource, action) for n in needs for action in n.actions}


@pytest.mark.parametrize("operation", sorted(STORE_OPERATION_NEEDS))
def test_store_operation_declares_exactly_the_dynamodb_calls_it_makes(operation: str) -> None:
    assert pairs(STORE_OPERATION_NEEDS[operation]) == store_calls_by_operation()[operation]


def test_every_public_store_method_that_calls_dynamodb_is_declared() -> None:
    module = parse("dataplane/stores/dynamodb.py")
    store = next(n for n in module.body if isinstance(n, ast.ClassDef) and n.name == "DynamoDBStore")
    public = {n.name for n in store.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")}
    # Table set-up is CloudFormation's job in AWS; these run only in tests and local dev.
    assert public - {"create_tables", "delete_tables", "client"} == set(STORE_OPERATION_NEEDS)


def store_calls_in(paths: list[Path]) -> set[str]:
    pattern = re.compile(r"(?:\bstore|store_get\(\))\.(\w+)\(")
    return {name for path in paths for name in pattern.findall(path.read_text())} & set(STORE_OPERATION_NEEDS)


def test_chat_turn_store_operations_are_what_the_pipeline_calls() -> None:
    paths = [REPO_ROOT / "dataplane" / name for name in ("pipeline.py", "gateway.py", "inbound.py")]
    assert store_calls_in(paths) == set(CHAT_TURN_STORE_OPERATIONS)


def test_control_plane_store_operations_are_what_quotas_calls() -> None:
    paths = sorted((REPO_ROOT / "quotas").rglob("*.py"))
    assert store_calls_in(paths) == set(CONTROL_PLANE_STORE_OPERATIONS)


@pytest.mark.parametrize(
    ("module", "prefix", "needs"),
    [
        ("dataplane/telemetry/sinks.py", "firehose", "dataplane.telemetry.sinks:FIREHOSE_SINK_NEEDS"),
        ("analytics/engines/athena.py", "athena", "analytics.permissions:REPORT_ENGINE_NEEDS"),
        ("analytics/directory.py", "s3", "analytics.permissions:DIRECTORY_PUBLISH_NEEDS"),
    ],
)
def test_adapter_declares_exactly_the_calls_it_makes(module: str, prefix: str, needs: str) -> None:
    import importlib

    module_name, _, attribute = needs.partition(":")
    declared_needs = getattr(importlib.import_module(module_name), attribute)
    declared_actions = {a for n in declared_needs for a in n.actions if a.startswith(prefix + ":")}
    assert {iam_action(prefix, m) for m in client_methods(parse(module))} == declared_actions


def test_bedrock_provider_declares_the_action_its_call_is_authorised_as() -> None:
    from dataplane.providers.bedrock import BEDROCK_NEEDS
    from tests.aws.calls import _BEDROCK_ACTIONS, GUARDRAIL_ACTION

    source = (REPO_ROOT / "dataplane/providers/bedrock.py").read_text()
    operations = {iam_action("", m).lstrip(":") for m in client_methods(parse("dataplane/providers/bedrock.py"))}
    actions = {GUARDRAIL_ACTION if o == "ApplyGuardrail" else _BEDROCK_ACTIONS[o] for o in operations}
    # A call with `guardrailConfig` is authorised as ApplyGuardrail on the guardrail as well.
    guardrail = {GUARDRAIL_ACTION} if '"guardrailConfig"' in source else set()
    assert actions | guardrail == {a for n in BEDROCK_NEEDS for a in n.actions}


def test_report_engine_needs_cover_only_report_resources() -> None:
    report_resources = {Resource.REPORT_WORKGROUP, Resource.LAKE_CATALOG, Resource.LAKE_BUCKETS,
                        Resource.REQUEST_LOG_OBJECTS, Resource.QUERY_RESULT_OBJECTS, Resource.DIRECTORY_OBJECTS}
    assert {n.resource for n in REPORT_ENGINE_NEEDS} == report_resources
