"""The AWS twin: the synthesized stack's storage made real on moto, its IAM enforced.

`AwsTwin.start(template, endpoint_url)` creates the DynamoDB tables (keys, TTL), the S3 buckets,
the Firehose delivery stream and the Athena work group exactly as the template declares them,
and installs the botocore hook. Inside `acting_as("ChatHandler" | "ControlPlane")` every call
any botocore client makes is authorised against that principal's synthesized policies first;
a denied call fails with the `AccessDeniedException` AWS would return, and every decision is
kept in `decisions` (so a test can assert there were no denials).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.aws.calls import CallMapper
from tests.aws.iam import Decision, Enforcer, Principal, denial_message
from tests.aws.template import Template

CHAT_HANDLER = "ChatHandler"
CONTROL_PLANE = "ControlPlane"
SUBSCRIBE_AUTHORIZER = "SubscribeAuthorizer"

# Dummy credentials: nothing the twin builds can sign a request real AWS would accept.
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
# AWS answers a denial with 400 on its JSON protocols and 403 on REST ones.
_DENIAL_STATUS = {"dynamodb": 400, "firehose": 400, "athena": 400, "glue": 400}


@dataclass(frozen=True)
class TwinResources:
    """The concrete names and ARNs of the stack's resources, as deployed in the twin."""

    policies_table: str
    usage_table: str
    cache_table: str
    delivery_stream: str
    lake_bucket: str
    results_bucket: str
    workgroup: str
    database: str
    results_location: str
    outbound_namespace_arn: str
    events_http_endpoint: str
    arns: dict[str, str] = field(default_factory=dict)


@dataclass
class AwsTwin:
    template: Template
    endpoint_url: str
    enforcer: Enforcer
    calls: CallMapper
    resources: TwinResources
    chat_env: dict[str, str]  # the chat Lambda's Environment.Variables, resolved
    _uninstall: Callable[[], None] | None = None

    # -- the API tests use --------------------------------------------------------------------
    @property
    def decisions(self) -> list[Decision]:
        return self.enforcer.decisions

    @property
    def denials(self) -> list[Decision]:
        return self.enforcer.denials

    def acting_as(self, principal: str):
        """Enforce `principal`'s policies on every botocore call inside the block."""
        return self.enforcer.acting_as(principal)

    def authorize(
        self, principal: str, action: str, resource: str, context: Mapping[str, str] | None = None
    ) -> Decision:
        """One decision for a call that is not botocore (e.g. AppSync's SigV4 HTTP publish)."""
        return self.enforcer.authorize(principal, action, resource, context)

    def channel_namespace_arn(self, namespace: str) -> str:
        """`arn:aws:appsync:<region>:<account>:apis/<api id>/channelNamespace/<namespace>`: what
        appsync:EventPublish/EventSubscribe are authorised on for a channel `/<namespace>/...`."""
        api_arn = self.resources.outbound_namespace_arn.rsplit("/channelNamespace/", 1)[0]
        return f"{api_arn}/channelNamespace/{namespace}"

    def principal(self, name: str) -> Principal:
        return self.enforcer.principals[name]

    def lambda_environment(self, *, bedrock_endpoint_url: str = "") -> dict[str, str]:
        """The chat Lambda's environment as the template sets it, plus what the Lambda runtime
        adds (region, credentials) and endpoints that send every AWS call to the twin."""
        env = {
            **self.chat_env,
            **DUMMY_CREDENTIALS,
            "AWS_REGION": self.template.region,
            "AWS_DEFAULT_REGION": self.template.region,
            "GATEWAY_DYNAMODB_ENDPOINT_URL": self.endpoint_url,
            # botocore's per-service endpoint variables: the Firehose sink has no setting of its own.
            "AWS_ENDPOINT_URL_FIREHOSE": self.endpoint_url,
            "AWS_ENDPOINT_URL_DYNAMODB": self.endpoint_url,
        }
        if bedrock_endpoint_url:
            env["GATEWAY_BEDROCK_ENDPOINT_URL"] = bedrock_endpoint_url
        return env

    def client(self, service: str) -> Any:
        """A boto3 client on the twin (dummy credentials, the twin's region)."""
        import boto3

        return boto3.session.Session().client(
            service,
            region_name=self.template.region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token="testing",
        )

    def store(self) -> Any:
        """The data plane's DynamoDB store on the twin's tables (a client of its own)."""
        from dataplane.stores.dynamodb import DynamoDBStore

        return DynamoDBStore(
            policies_table=self.resources.policies_table,
            usage_table=self.resources.usage_table,
            cache_table=self.resources.cache_table,
            region=self.template.region,
            endpoint_url=self.endpoint_url,
            client=self.client("dynamodb"),
        )

    @contextmanager
    def statements_replaced(self, principal: str, statements: list[dict[str, Any]]) -> Iterator[None]:
        """Evaluate `principal` against other statements for the block (e.g. an older policy)."""
        found = self.enforcer.principals[principal]
        saved, found.statements = found.statements, statements
        try:
            yield
        finally:
            found.statements = saved

    def empty_tables(self) -> None:
        """Delete every item of the stack's tables, so each test starts from what a fresh
        deploy has (tests share the session's tables)."""
        dynamodb = self.client("dynamodb")
        for table in (self.resources.policies_table, self.resources.usage_table, self.resources.cache_table):
            keys = [k["AttributeName"] for k in dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]]
            for page in dynamodb.get_paginator("scan").paginate(
                TableName=table,
                ProjectionExpression=", ".join(f"#k{i}" for i in range(len(keys))),
                ExpressionAttributeNames={f"#k{i}": k for i, k in enumerate(keys)},
            ):
                for item in page["Items"]:
                    dynamodb.delete_item(TableName=table, Key={k: item[k] for k in keys})

    def forget_decisions(self) -> None:
        self.enforcer.decisions.clear()
        self.calls.bedrock_route_region = None

    def stop(self) -> None:
        global _running  # noqa: PLW0603 - the one twin of this process, for the import hook
        if self._uninstall:
            self._uninstall()
            self._uninstall = None
        if _running is self:
            _running = None

    # -- start-up -----------------------------------------------------------------------------
    @classmethod
    def start(cls, template: Template, endpoint_url: str) -> AwsTwin:
        twin = cls(
            template=template,
            endpoint_url=endpoint_url,
            enforcer=Enforcer(principals=template_principals(template)),
            calls=CallMapper(account=template.account),
            resources=template_resources(template),
            chat_env=template.function_environment(template.function_id(_handler(CHAT_HANDLER))),
        )
        _provision(twin)
        twin._uninstall = _install_hook(twin)
        global _running  # noqa: PLW0603 - the one twin of this process, for the import hook
        _running = twin
        return twin


_running: AwsTwin | None = None


def running_twin() -> AwsTwin:
    """The twin of this process (one per test session, or the one `python -m tests.aws` runs)."""
    if _running is None:
        raise RuntimeError("no AWS twin is running: ask for the `aws_twin` fixture first")
    return _running


def authorize(principal: str, action: str, resource: str, context: Mapping[str, str] | None = None) -> Decision:
    """Decide one request of `principal` against its synthesized policies, and record it.

    For calls that do not go through botocore, e.g. the AppSync Events emulator checking a
    SigV4 HTTP publish: `authorize("ChatHandler", "appsync:EventPublish", namespace_arn)`.
    """
    return running_twin().authorize(principal, action, resource, context)


def _handler(principal: str) -> str:
    from gateway_infra.functions import CHAT_HANDLER as CHAT_HANDLER_PATH
    from gateway_infra.functions import SUBSCRIBE_AUTHORIZER_HANDLER

    return {CHAT_HANDLER: CHAT_HANDLER_PATH, SUBSCRIBE_AUTHORIZER: SUBSCRIBE_AUTHORIZER_HANDLER}[principal]


def template_principals(template: Template) -> dict[str, Principal]:
    principals = {}
    for name in (CHAT_HANDLER, SUBSCRIBE_AUTHORIZER):
        function_id = template.function_id(_handler(name))
        role_id = template.function_role_id(function_id)
        # A Lambda's calls are made as an STS session of its role named after the function.
        arn = (
            f"arn:aws:sts::{template.account}:assumed-role/"
            f"{template.physical_name(role_id)}/{template.physical_name(function_id)}"
        )
        principals[name] = Principal(name, arn, template.role_statements(role_id))
    policy_ids = [k for k in template.of_type("AWS::IAM::ManagedPolicy") if k.startswith("ControlPlanePolicy")]
    assert len(policy_ids) == 1, policy_ids
    # Django assumes a role carrying this managed policy (created by the stack when
    # `gateway:controlPlanePrincipalArn` is set, else by the deployer).
    principals[CONTROL_PLANE] = Principal(
        CONTROL_PLANE,
        f"arn:aws:sts::{template.account}:assumed-role/{template.stack_name}-ControlPlaneRole/django",
        template.managed_policy_statements(policy_ids[0]),
    )
    return principals


def _one(template: Template, resource_type: str, id_prefix: str) -> str:
    found = [k for k in template.of_type(resource_type) if k.startswith(id_prefix)]
    assert len(found) == 1, f"expected one {resource_type} named {id_prefix}*: {found}"
    return found[0]


def template_resources(template: Template) -> TwinResources:
    table = {name: _one(template, "AWS::DynamoDB::Table", f"Tables{name}") for name in ("Policies", "Usage", "Cache")}
    stream = _one(template, "AWS::KinesisFirehose::DeliveryStream", "Lake")
    lake_bucket = _one(template, "AWS::S3::Bucket", "LakeLakeBucket")
    results_bucket = _one(template, "AWS::S3::Bucket", "LakeAthenaResultsBucket")
    workgroup = _one(template, "AWS::Athena::WorkGroup", "Lake")
    database = _one(template, "AWS::Glue::Database", "Lake")
    outbound = next(
        k
        for k, r in template.of_type("AWS::AppSync::ChannelNamespace").items()
        if r["Properties"]["Name"] == "outbound"
    )
    api = _one(template, "AWS::AppSync::Api", "Events")
    workgroup_props = template.resources[workgroup]["Properties"]
    results_location = template.resolve(
        workgroup_props["WorkGroupConfiguration"]["ResultConfiguration"]["OutputLocation"]
    )
    arns = {
        logical_id: template.get_att(logical_id, "Arn")
        for logical_id in (*table.values(), stream, lake_bucket, results_bucket)
    }
    return TwinResources(
        policies_table=template.ref(table["Policies"]),
        usage_table=template.ref(table["Usage"]),
        cache_table=template.ref(table["Cache"]),
        delivery_stream=template.ref(stream),
        lake_bucket=template.ref(lake_bucket),
        results_bucket=template.ref(results_bucket),
        workgroup=template.ref(workgroup),
        database=template.resolve(template.resources[database]["Properties"]["DatabaseInput"]["Name"]),
        results_location=results_location,
        outbound_namespace_arn=template.get_att(outbound, "ChannelNamespaceArn"),
        events_http_endpoint=f"https://{template.get_att(api, 'Dns.Http')}/event",
        arns=arns,
    )


def _provision(twin: AwsTwin) -> None:
    """Create what the template declares, on moto (not as any principal: this is CloudFormation)."""
    template = twin.template
    dynamodb = twin.client("dynamodb")
    for logical_id, resource in template.of_type("AWS::DynamoDB::Table").items():
        props = template.resolve(resource["Properties"])
        name = template.ref(logical_id)
        dynamodb.create_table(
            TableName=name,
            KeySchema=props["KeySchema"],
            AttributeDefinitions=props["AttributeDefinitions"],
            BillingMode=props.get("BillingMode", "PROVISIONED"),
        )
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    s3 = twin.client("s3")
    for logical_id in template.of_type("AWS::S3::Bucket"):
        s3.create_bucket(Bucket=template.ref(logical_id))
    firehose = twin.client("firehose")
    for logical_id, resource in template.of_type("AWS::KinesisFirehose::DeliveryStream").items():
        destination = template.resolve(resource["Properties"]["ExtendedS3DestinationConfiguration"])
        firehose.create_delivery_stream(
            DeliveryStreamName=template.ref(logical_id),
            DeliveryStreamType=resource["Properties"].get("DeliveryStreamType", "DirectPut"),
            ExtendedS3DestinationConfiguration={
                key: destination[key]
                for key in (
                    "RoleARN",
                    "BucketARN",
                    "Prefix",
                    "ErrorOutputPrefix",
                    "BufferingHints",
                    "CompressionFormat",
                )
                if key in destination
            },
        )
    sns = twin.client("sns")
    for logical_id in template.of_type("AWS::SNS::Topic"):
        sns.create_topic(Name=template.physical_name(logical_id))
    athena = twin.client("athena")
    for resource in template.of_type("AWS::Athena::WorkGroup").values():
        props = template.resolve(resource["Properties"])
        output = props["WorkGroupConfiguration"]["ResultConfiguration"]["OutputLocation"]
        athena.create_work_group(
            Name=props["Name"], Configuration={"ResultConfiguration": {"OutputLocation": output}}
        )


def _install_hook(twin: AwsTwin) -> Callable[[], None]:
    """Wrap botocore's one funnel for API calls, so every client (cached or new) is covered."""
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    original = BaseClient._make_api_call

    def _make_api_call(client: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        principal = twin.enforcer.acting
        if principal is None:
            return original(client, operation_name, api_params)
        service = client.meta.service_model.service_name
        for action, resource in twin.calls.requests(
            service, operation_name, api_params, region=client.meta.region_name
        ):
            decision = twin.enforcer.authorize(principal.name, action, resource)
            if not decision.allowed:
                code = "AccessDenied" if service == "s3" else "AccessDeniedException"
                raise ClientError(
                    {
                        "Error": {"Code": code, "Message": denial_message(principal, decision)},
                        "ResponseMetadata": {"HTTPStatusCode": _DENIAL_STATUS.get(service, 403)},
                    },
                    operation_name,
                )
        response = original(client, operation_name, api_params)
        twin.calls.remember(service, operation_name, api_params, response)
        return response

    BaseClient._make_api_call = _make_api_call

    def uninstall() -> None:
        BaseClient._make_api_call = original

    return uninstall


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set these environment variables for the block (what a Lambda's os.environ would hold)."""
    import os

    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
