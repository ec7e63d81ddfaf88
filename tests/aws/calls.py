"""Which IAM actions on which resource ARNs one botocore call needs, as AWS authorises it.

Mapped from the operation and its parameters, before the call is sent:

- DynamoDB: the operation's own action on the table; `BatchGetItem`/`BatchWriteItem` once per
  table they name; a transaction through its items' actions (`Update` → UpdateItem,
  `ConditionCheck` → ConditionCheckItem, ...), since IAM has no transaction action.
- Firehose: the action on the delivery stream.
- Bedrock runtime: `ConverseStream`/`InvokeModelWithResponseStream` are
  bedrock:InvokeModelWithResponseStream, `Converse`/`InvokeModel` bedrock:InvokeModel, on the
  model named by `modelId`. An inference profile is checked on the profile in the calling
  region and again on the foundation model where it routes: the destination region for
  `us.`/`eu.`/`apac.`/... profiles, the region-less foundation-model ARN for `global.` ones.
- Athena: the action on the work group (remembered per query id for the later calls), and
  for a query what Athena does with the caller's identity: read the Glue catalogue entries
  and write the result object.
- S3: bucket or object actions on the bucket or object ARN.
- SNS: `Publish` on the topic.

An operation the twin has no mapping for raises `UnmappedOperationError`: a call that nobody
authorised must fail the test, not slip through.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

IamRequest = tuple[str, str]  # (action, resource ARN)

# Prefixes of Bedrock's system-defined cross-region inference profiles.
_GEOGRAPHIC_PROFILE = re.compile(r"^(us|eu|apac|us-gov|jp|au|ca)\.")
_GLOBAL_PROFILE = "global."

_TRANSACT_ITEM_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}

_BEDROCK_ACTIONS = {
    "ConverseStream": "bedrock:InvokeModelWithResponseStream",
    "InvokeModelWithResponseStream": "bedrock:InvokeModelWithResponseStream",
    "Converse": "bedrock:InvokeModel",
    "InvokeModel": "bedrock:InvokeModel",
}

GUARDRAIL_ACTION = "bedrock:ApplyGuardrail"

_S3_OBJECT_ACTIONS = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts",
    "DeleteObject": "s3:DeleteObject",
}
_S3_BUCKET_ACTIONS = {
    "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "GetBucketLocation": "s3:GetBucketLocation",
    "CreateBucket": "s3:CreateBucket",
    "DeleteBucket": "s3:DeleteBucket",
}

# SQL table references after FROM/JOIN (`db.table`, `"db"."table"` or `table`).
_SQL_TABLES = re.compile(r'\b(?:from|join)\s+("?[\w]+"?(?:\."?[\w]+"?)?)', re.IGNORECASE)
# `WITH scoped AS (`, `, active AS (`: names a query defines itself; Athena looks none up in Glue.
_SQL_CTE_NAMES = re.compile(r'(?:\bwith|,)\s+"?(\w+)"?\s+as\s*\(', re.IGNORECASE)


class UnmappedOperationError(Exception):
    """A botocore operation the twin cannot authorise; add it to the mapping."""


@dataclass
class CallMapper:
    account: str
    # Where a cross-region profile's call lands (None: the calling region); tests move it.
    bedrock_route_region: str | None = None
    query_workgroups: dict[str, str] = field(default_factory=dict)

    def requests(self, service: str, operation: str, params: dict[str, Any], *, region: str) -> list[IamRequest]:
        method = getattr(self, "_" + service.replace("-", "_"), None)
        if method is None:
            raise UnmappedOperationError(f"the twin has no IAM mapping for {service}:{operation}")
        return method(operation, params, region)

    def remember(self, service: str, operation: str, params: dict[str, Any], response: dict[str, Any]) -> None:
        if service == "athena" and operation == "StartQueryExecution":
            self.query_workgroups[response["QueryExecutionId"]] = params.get("WorkGroup", "primary")

    def arn(self, service: str, region: str, resource: str, account: str | None = None) -> str:
        return f"arn:aws:{service}:{region}:{self.account if account is None else account}:{resource}"

    # -- services -----------------------------------------------------------------------------
    def _dynamodb(self, operation: str, params: dict[str, Any], region: str) -> list[IamRequest]:
        def table(name: str) -> str:
            return self.arn("dynamodb", region, f"table/{name}")

        if operation in ("BatchGetItem", "BatchWriteItem"):
            return [(f"dynamodb:{operation}", table(name)) for name in params["RequestItems"]]
        if operation in ("TransactWriteItems", "TransactGetItems"):
            found = []
            for item in params["TransactItems"]:
                (kind, body), = item.items()
                found.append((_TRANSACT_ITEM_ACTIONS[kind], table(body["TableName"])))
            return list(dict.fromkeys(found))
        if operation == "ListTables":
            return [("dynamodb:ListTables", "*")]
        if "TableName" in params:
            return [(f"dynamodb:{operation}", table(params["TableName"]))]
        raise UnmappedOperationError(f"the twin has no IAM mapping for dynamodb:{operation}")

    def _firehose(self, operation: str, params: dict[str, Any], region: str) -> list[IamRequest]:
        if "DeliveryStreamName" not in params:
            raise UnmappedOperationError(f"the twin has no IAM mapping for firehose:{operation}")
        stream = self.arn("firehose", region, f"deliverystream/{params['DeliveryStreamName']}")
        return [(f"firehose:{operation}", stream)]

    def _bedrock_runtime(self, operation: str, params: dict[str, Any], region: str) -> list[IamRequest]:
        if operation == "ApplyGuardrail":
            return [(GUARDRAIL_ACTION, self._guardrail_arn(params["guardrailIdentifier"], region))]
        if operation not in _BEDROCK_ACTIONS:
            raise UnmappedOperationError(f"the twin has no IAM mapping for bedrock-runtime:{operation}")
        found = self._bedrock_model(_BEDROCK_ACTIONS[operation], params["modelId"], region)
        guardrail = (params.get("guardrailConfig") or {}).get("guardrailIdentifier")
        if guardrail:
            found.append((GUARDRAIL_ACTION, self._guardrail_arn(guardrail, region)))
        return found

    def _guardrail_arn(self, identifier: str, region: str) -> str:
        return identifier if identifier.startswith("arn:") else self.arn("bedrock", region, f"guardrail/{identifier}")

    def _bedrock_model(self, action: str, model_id: str, region: str) -> list[IamRequest]:
        if model_id.startswith("arn:"):
            return [(action, model_id)]
        if model_id.startswith(_GLOBAL_PROFILE):
            model = model_id[len(_GLOBAL_PROFILE):]
            return [
                (action, self.arn("bedrock", region, f"inference-profile/{model_id}")),
                (action, f"arn:aws:bedrock:::foundation-model/{model}"),
            ]
        if _GEOGRAPHIC_PROFILE.match(model_id):
            model = model_id.split(".", 1)[1]
            destination = self.bedrock_route_region or region
            return [
                (action, self.arn("bedrock", region, f"inference-profile/{model_id}")),
                (action, self.arn("bedrock", destination, f"foundation-model/{model}", account="")),
            ]
        return [(action, self.arn("bedrock", region, f"foundation-model/{model_id}", account=""))]

    def _athena(self, operation: str, params: dict[str, Any], region: str) -> list[IamRequest]:
        if operation == "StartQueryExecution":
            workgroup = params.get("WorkGroup", "primary")
        elif "QueryExecutionId" in params:
            workgroup = self.query_workgroups.get(params["QueryExecutionId"], "primary")
        else:
            raise UnmappedOperationError(f"the twin has no IAM mapping for athena:{operation}")
        found = [(f"athena:{operation}", self.arn("athena", region, f"workgroup/{workgroup}"))]
        if operation == "StartQueryExecution":
            found += self._athena_as_caller(params, region)
        return found

    def _athena_as_caller(self, params: dict[str, Any], region: str) -> list[IamRequest]:
        """What Athena itself does with the caller's credentials to run the query."""
        database = (params.get("QueryExecutionContext") or {}).get("Database", "default")
        catalog = self.arn("glue", region, "catalog")
        found = [("glue:GetDatabase", catalog), ("glue:GetDatabase", self.arn("glue", region, f"database/{database}"))]
        query = params.get("QueryString", "")
        defined_here = {name.lower() for name in _SQL_CTE_NAMES.findall(query)}
        for reference in _SQL_TABLES.findall(query):
            parts = [part.strip('"') for part in reference.split(".")]
            if len(parts) == 1 and parts[0].lower() in defined_here:
                continue
            table_database, table = (database, parts[0]) if len(parts) == 1 else parts
            found += [
                ("glue:GetTable", catalog),
                ("glue:GetTable", self.arn("glue", region, f"database/{table_database}")),
                ("glue:GetTable", self.arn("glue", region, f"table/{table_database}/{table}")),
            ]
        output = (params.get("ResultConfiguration") or {}).get("OutputLocation")
        if output:
            bucket, _, prefix = output.removeprefix("s3://").partition("/")
            found += [
                ("s3:GetBucketLocation", f"arn:aws:s3:::{bucket}"),
                ("s3:PutObject", f"arn:aws:s3:::{bucket}/{prefix}query-result.csv"),
            ]
        return list(dict.fromkeys(found))

    def _s3(self, operation: str, params: dict[str, Any], region: str) -> list[IamRequest]:
        bucket = params.get("Bucket")
        if operation in _S3_OBJECT_ACTIONS and bucket:
            return [(_S3_OBJECT_ACTIONS[operation], f"arn:aws:s3:::{bucket}/{params['Key']}")]
        if operation in _S3_BUCKET_ACTIONS and bucket:
            return [(_S3_BUCKET_ACTIONS[operation], f"arn:aws:s3:::{bucket}")]
        if operation == "ListBuckets":
            return [("s3:ListAllMyBuckets", "*")]
        raise UnmappedOperationError(f"the twin has no IAM mapping for s3:{operation}")

    def _sns(self, operation: str, params: dict[str, Any], region: str) -> list[IamRequest]:
        if operation == "Publish" and "TopicArn" in params:
            return [("sns:Publish", params["TopicArn"])]
        raise UnmappedOperationError(f"the twin has no IAM mapping for sns:{operation}")

    def _sts(self, operation: str, params: dict[str, Any], region: str) -> list[IamRequest]:
        if operation == "GetCallerIdentity":
            return []  # needs no permission in AWS either
        raise UnmappedOperationError(f"the twin has no IAM mapping for sts:{operation}")
