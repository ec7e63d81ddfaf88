"""The synthesized CloudFormation template, resolved against the twin's account and region.

The template is the source of truth: names, ARNs, environment variables and IAM statements are
all read from it, with `Ref`/`Fn::GetAtt`/`Fn::Join`/`Fn::Sub` resolved the way CloudFormation
would for a stack deployed in a fake account. Physical names are deterministic
(`<stack>-<logical id>`, lower-cased where AWS requires it) so a test can name them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"


class UnresolvableValueError(ValueError):
    """The template holds an intrinsic or attribute the twin does not model (yet)."""


# Explicit name properties per resource type: CloudFormation uses them as the physical name.
_NAME_PROPERTIES = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::KinesisFirehose::DeliveryStream": "DeliveryStreamName",
    "AWS::Athena::WorkGroup": "Name",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::AppSync::ChannelNamespace": "Name",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SQS::Queue": "QueueName",
}


@dataclass(frozen=True)
class Template:
    body: dict[str, Any]
    stack_name: str
    account: str = ACCOUNT
    region: str = REGION

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.body["Resources"]

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == resource_type}

    # -- names and ARNs -----------------------------------------------------------------------
    def physical_name(self, logical_id: str) -> str:
        resource = self.resources[logical_id]
        name_property = _NAME_PROPERTIES.get(resource["Type"])
        explicit = resource.get("Properties", {}).get(name_property) if name_property else None
        if explicit is not None:
            return str(self.resolve(explicit))
        name = f"{self.stack_name}-{logical_id}"
        if resource["Type"] == "AWS::S3::Bucket":  # bucket names are lower-case, at most 63
            name = name.lower()[:63]
        return name

    def api_id(self, logical_id: str) -> str:
        return "twin" + re.sub(r"[^a-z0-9]", "", logical_id.lower())[-22:]

    def arn(self, service: str, resource: str, *, region: str | None = None, account: str | None = None) -> str:
        region = self.region if region is None else region
        account = self.account if account is None else account
        return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"

    def ref(self, logical_id: str) -> str:
        pseudo = {
            "AWS::AccountId": self.account,
            "AWS::Region": self.region,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack_name,
        }
        if logical_id in pseudo:
            return pseudo[logical_id]
        if logical_id in self.body.get("Parameters", {}):
            default = self.body["Parameters"][logical_id].get("Default")
            if default is None:
                raise UnresolvableValueError(f"parameter {logical_id} has no default")
            return str(default)
        kind = self.resources[logical_id]["Type"]
        if kind == "AWS::IAM::ManagedPolicy":
            return self.arn("iam", f"policy/{self.physical_name(logical_id)}", region="")
        if kind == "AWS::AppSync::Api":
            return self.api_id(logical_id)
        if kind == "AWS::SNS::Topic":  # a topic's Ref is its ARN
            return self.arn("sns", self.physical_name(logical_id))
        return self.physical_name(logical_id)

    def get_att(self, logical_id: str, attribute: str) -> str:
        kind = self.resources[logical_id]["Type"]
        name = self.physical_name(logical_id)
        arns = {
            ("AWS::DynamoDB::Table", "Arn"): lambda: self.arn("dynamodb", f"table/{name}"),
            ("AWS::KinesisFirehose::DeliveryStream", "Arn"): lambda: self.arn("firehose", f"deliverystream/{name}"),
            ("AWS::S3::Bucket", "Arn"): lambda: f"arn:{PARTITION}:s3:::{name}",
            ("AWS::IAM::Role", "Arn"): lambda: self.arn("iam", f"role/{name}", region=""),
            ("AWS::Lambda::Function", "Arn"): lambda: self.arn("lambda", f"function:{name}"),
            ("AWS::Logs::LogGroup", "Arn"): lambda: self.arn("logs", f"log-group:{name}:*"),
            ("AWS::SNS::Topic", "TopicArn"): lambda: self.arn("sns", name),
            ("AWS::SQS::Queue", "Arn"): lambda: self.arn("sqs", name),
        }
        if (kind, attribute) in arns:
            return arns[(kind, attribute)]()
        if kind == "AWS::AppSync::Api":
            api_id = self.api_id(logical_id)
            return {
                "ApiId": api_id,
                "ApiArn": self.arn("appsync", f"apis/{api_id}"),
                "Dns.Http": f"{api_id}.appsync-api.{self.region}.amazonaws.com",
                "Dns.Realtime": f"{api_id}.appsync-realtime-api.{self.region}.amazonaws.com",
            }[attribute]
        if kind == "AWS::Bedrock::Guardrail":  # ids are lower-case letters and digits
            guardrail_id = "twin" + re.sub(r"[^a-z0-9]", "", logical_id.lower())[-8:]
            return {"GuardrailId": guardrail_id, "GuardrailArn": self.arn("bedrock", f"guardrail/{guardrail_id}"),
                    "Version": "DRAFT"}[attribute]
        if (kind, attribute) == ("AWS::Bedrock::GuardrailVersion", "Version"):
            return "1"  # the first version published from the draft
        if (kind, attribute) == ("AWS::AppSync::ChannelNamespace", "ChannelNamespaceArn"):
            props = self.resources[logical_id]["Properties"]
            api_id = self.resolve(props["ApiId"])
            return self.arn("appsync", f"apis/{api_id}/channelNamespace/{name}")
        raise UnresolvableValueError(f"the twin does not model {kind}.{attribute} ({logical_id})")

    # -- intrinsics ---------------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Fn::", "Ref")):
            return {key: self.resolve(item) for key, item in value.items()}
        (function, argument), = value.items()
        if function == "Ref":
            return self.ref(argument)
        if function == "Fn::GetAtt":
            logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self.get_att(logical_id, attribute)
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(str(self.resolve(part)) for part in parts)
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            variables = {key: self.resolve(item) for key, item in variables.items()}

            def substitute(match: re.Match[str]) -> str:
                name = match.group(1)
                if name in variables:
                    return str(variables[name])
                if "." in name:
                    return self.get_att(*name.split(".", 1))
                return self.ref(name)

            return re.sub(r"\$\{([^}!]+)\}", substitute, text)
        if function == "Fn::Select":
            index, items = argument
            return self.resolve(items)[int(index)]
        if function == "Fn::Split":
            separator, text = argument
            return str(self.resolve(text)).split(separator)
        raise UnresolvableValueError(f"the twin does not model {function}")

    # -- what the twin reads ------------------------------------------------------------------
    def function_id(self, handler: str) -> str:
        found = [
            logical_id
            for logical_id, resource in self.of_type("AWS::Lambda::Function").items()
            if resource["Properties"].get("Handler") == handler
        ]
        assert len(found) == 1, f"expected one function with handler {handler}: {found}"
        return found[0]

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """The Lambda's `Environment.Variables`, resolved: what its `os.environ` holds in AWS."""
        variables = self.resources[logical_id]["Properties"].get("Environment", {}).get("Variables", {})
        return {name: str(self.resolve(value)) for name, value in variables.items()}

    def function_role_id(self, function_id: str) -> str:
        role = self.resources[function_id]["Properties"]["Role"]
        return role["Fn::GetAtt"][0]

    def role_statements(self, role_id: str) -> list[dict[str, Any]]:
        """Every identity-policy statement attached to a role: inline, attached and managed."""
        role = self.resources[role_id]["Properties"]
        documents = [policy["PolicyDocument"] for policy in role.get("Policies", [])]
        documents.extend(
            policy["Properties"]["PolicyDocument"]
            for policy in self.of_type("AWS::IAM::Policy").values()
            if {"Ref": role_id} in policy["Properties"].get("Roles", [])
        )
        for managed in role.get("ManagedPolicyArns", []):
            if isinstance(managed, dict) and "Ref" in managed:
                documents.append(self.resources[managed["Ref"]]["Properties"]["PolicyDocument"])
            else:  # an AWS-managed policy: the twin does not know its statements
                raise UnresolvableValueError(f"role {role_id} attaches {managed}, which the twin cannot read")
        return self.statements(documents)

    def managed_policy_statements(self, policy_id: str) -> list[dict[str, Any]]:
        return self.statements([self.resources[policy_id]["Properties"]["PolicyDocument"]])

    def statements(self, documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
        statements: list[dict[str, Any]] = []
        for document in documents:
            found = document["Statement"]
            statements += found if isinstance(found, list) else [found]
        return [self.resolve(statement) for statement in statements]
