"""The log lake: Firehose → S3 (gzip JSON lines) → Glue table → Athena workgroup.

The Glue table is generated from `dataplane.telemetry.schema`, the one definition of a request
record, so a column added there appears here on the next deploy. Partitions are not crawled:
partition projection computes them from the same path layout Firehose writes.
"""
from __future__ import annotations

import re

from aws_cdk import Duration, RemovalPolicy, Size, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from dataplane.telemetry.schema import LAKE_COLUMNS, PARTITION_KEYS

from .nag import acknowledge, resource_finding

LAKE_PREFIX = "lake/requests/"
LAKE_ERROR_PREFIX = "lake/errors/"
ATHENA_RESULTS_PREFIX = "athena-results/"
LAKE_TABLE_NAME = "requests"

# For each partition key: Firehose's timestamp pattern and Athena's projection range/digits.
# A partition key added to the schema without an entry here fails the synth, on purpose.
_PARTITION_LAYOUT: dict[str, tuple[str, str, int]] = {
    "year": ("yyyy", "2024,2124", 4),
    "month": ("MM", "1,12", 2),
    "day": ("dd", "1,31", 2),
    "hour": ("HH", "0,23", 2),
}

# Records land within 5 minutes (reports run hourly at most); 64 MiB keeps objects big enough
# for Athena to scan efficiently and above S3-IA's 128 KiB minimum billable size at any load
# worth transitioning.
_BUFFER_INTERVAL = Duration.minutes(5)
_BUFFER_SIZE = Size.mebibytes(64)


def firehose_partition_prefix() -> str:
    """`lake/requests/year=!{timestamp:yyyy}/month=!{timestamp:MM}/...` (UTC, as the schema says)."""
    parts = [f"{key}=!{{timestamp:{_PARTITION_LAYOUT[key][0]}}}" for key, _ in PARTITION_KEYS]
    return LAKE_PREFIX + "/".join(parts) + "/"


def projection_location_template(bucket_name: str) -> str:
    """`s3://<bucket>/lake/requests/year=${year}/...`: the same path, in Athena's placeholders."""
    parts = [f"{key}=${{{key}}}" for key, _ in PARTITION_KEYS]
    return f"s3://{bucket_name}/{LAKE_PREFIX}" + "/".join(parts) + "/"


def _projection_parameters() -> dict[str, str]:
    params = {"projection.enabled": "true"}
    for key, _ in PARTITION_KEYS:
        _, value_range, digits = _PARTITION_LAYOUT[key]
        params[f"projection.{key}.type"] = "integer"
        params[f"projection.{key}.range"] = value_range
        params[f"projection.{key}.digits"] = str(digits)
    return params


def glue_database_name(stack_name: str) -> str:
    # Glue/Athena names: lower case, digits and underscores only.
    return re.sub(r"[^a-z0-9_]", "_", stack_name.lower()) + "_lake"


class AnalyticsLake(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        retain_data: bool,
        bytes_scanned_cutoff: int,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        removal = RemovalPolicy.RETAIN if retain_data else RemovalPolicy.DESTROY

        self.access_logs = self._bucket(
            "AccessLogs",
            removal=removal,
            lifecycle=[s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(90))],
        )
        acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "This bucket is the server-access-log target of the lake and results buckets; "
            "logging it into itself would loop.",
        )

        self.lake_bucket = self._bucket(
            "LakeBucket",
            removal=removal,
            server_access_logs_prefix="lake-bucket/",
            lifecycle=[
                # Reports read recent months; older partitions are kept for audits, cheaply.
                s3.LifecycleRule(
                    id="age-out-requests",
                    prefix=LAKE_PREFIX,
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                            transition_after=Duration.days(90),
                        )
                    ],
                    expiration=Duration.days(730),
                ),
                # Failed deliveries are for debugging a bad deploy, not for keeping.
                s3.LifecycleRule(
                    id="expire-delivery-errors",
                    prefix=LAKE_ERROR_PREFIX,
                    expiration=Duration.days(30),
                ),
            ],
        )

        self.results_bucket = self._bucket(
            "AthenaResultsBucket",
            removal=removal,
            server_access_logs_prefix="athena-results-bucket/",
            # Report runs store their own copy in Django; Athena's CSVs are scratch.
            lifecycle=[
                s3.LifecycleRule(id="expire-query-results", expiration=Duration.days(30))
            ],
        )

        self.delivery_stream = firehose.DeliveryStream(
            self,
            "RequestLogStream",
            # DirectPut: the chat handler calls PutRecordBatch itself (no Kinesis stream between).
            destination=firehose.S3Bucket(
                self.lake_bucket,
                data_output_prefix=firehose_partition_prefix(),
                # Firehose requires the error-output-type expression whenever the data prefix
                # uses expressions.
                error_output_prefix=LAKE_ERROR_PREFIX
                + "!{firehose:error-output-type}/year=!{timestamp:yyyy}/month=!{timestamp:MM}/"
                "day=!{timestamp:dd}/",
                compression=firehose.Compression.GZIP,
                buffering_interval=_BUFFER_INTERVAL,
                buffering_size=_BUFFER_SIZE,
                # Delivery errors are logged with a retention (the L2's default group keeps
                # them for two years).
                logging_config=firehose.EnableLogging(
                    logs.LogGroup(
                        self,
                        "DeliveryErrors",
                        retention=logs.RetentionDays.ONE_MONTH,
                        removal_policy=RemovalPolicy.DESTROY,
                    )
                ),
            ),
            encryption=firehose.StreamEncryption.aws_owned_key(),
        )

        # The destination's role is CDK's `bucket.grantReadWrite` (wildcard action groups on the
        # lake bucket's objects); Firehose writes under generated object names, so an object
        # ARN pattern is unavoidable, and the bucket holds nothing but this stream's output.
        acknowledge(
            self.delivery_stream,
            "AwsSolutions-IAM5",
            "Firehose's S3 destination role (generated by CDK) reads/writes objects with "
            "generated names in the lake bucket only.",
            findings=[
                *(
                    f"Action::s3:{action}"
                    for action in ("Abort*", "DeleteObject*", "GetBucket*", "GetObject*", "List*")
                ),
                resource_finding(self, self.lake_bucket.arn_for_objects("*")),
            ],
        )

        self.database_name = glue_database_name(stack.stack_name)
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=stack.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name,
                description="AI gateway request log lake (one row per chat turn).",
            ),
        )
        self.table = self._requests_table(stack)
        self.table.node.add_dependency(self.database)

        self.results_location = f"s3://{self.results_bucket.bucket_name}/{ATHENA_RESULTS_PREFIX}"
        self.workgroup = athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=f"{stack.stack_name}-analytics",
            description="Reports over the AI gateway request lake.",
            state="ENABLED",
            # Deleting the stack must not fail because the workgroup still holds query history.
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                # Clients cannot override the result location, encryption or the scan cap.
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                # A runaway query (no partition filter) stops here instead of scanning the lake.
                bytes_scanned_cutoff_per_query=bytes_scanned_cutoff,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=self.results_location,
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"
                    ),
                    expected_bucket_owner=stack.account,
                ),
            ),
        )

    @property
    def table_name(self) -> str:
        return LAKE_TABLE_NAME

    def _requests_table(self, stack: Stack) -> glue.CfnTable:
        columns = [
            glue.CfnTable.ColumnProperty(name=name, type=athena_type, comment=meaning)
            for name, athena_type, meaning in LAKE_COLUMNS
        ]
        partition_keys = [
            glue.CfnTable.ColumnProperty(name=name, type=athena_type)
            for name, athena_type in PARTITION_KEYS
        ]
        return glue.CfnTable(
            self,
            "RequestsTable",
            catalog_id=stack.account,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=LAKE_TABLE_NAME,
                description="One record per chat turn; schema from dataplane.telemetry.schema.",
                table_type="EXTERNAL_TABLE",
                partition_keys=partition_keys,
                parameters={
                    "classification": "json",
                    "compressionType": "gzip",
                    "EXTERNAL": "TRUE",
                    **_projection_parameters(),
                    "storage.location.template": projection_location_template(
                        self.lake_bucket.bucket_name
                    ),
                },
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=columns,
                    location=f"s3://{self.lake_bucket.bucket_name}/{LAKE_PREFIX}",
                    input_format="org.apache.hadoop.mapred.TextInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                    compressed=True,
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library="org.openx.data.jsonserde.JsonSerDe",
                        # A malformed line must surface as a query error, not vanish silently.
                        parameters={"ignore.malformed.json": "false"},
                    ),
                ),
            ),
        )

    def _bucket(
        self,
        construct_id: str,
        *,
        removal: RemovalPolicy,
        lifecycle: list[s3.LifecycleRule],
        server_access_logs_prefix: str | None = None,
    ) -> s3.Bucket:
        return s3.Bucket(
            self,
            construct_id,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs if server_access_logs_prefix else None,
            server_access_logs_prefix=server_access_logs_prefix,
            lifecycle_rules=[
                *lifecycle,
                s3.LifecycleRule(
                    id="abort-incomplete-uploads",
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                ),
            ],
            # Buckets are never auto-emptied: that needs a custom-resource Lambda, and deleting
            # the request log should be a deliberate act (see README, "cdk destroy").
            removal_policy=removal,
        )
