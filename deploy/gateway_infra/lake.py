"""The log lake: Firehose → S3 (Parquet, by event day) → Glue tables → Athena workgroup.

The chat Lambda sends one JSON row per turn; Firehose converts it to Parquet with the Glue
table's schema (record format conversion), and files it under `dt=<the day of the row's own
ts>/` (dynamic partitioning, a JQ query on `ts`), so a turn at 23:58 lands in its own day
whatever the buffer's arrival time. The Glue table is generated from
`dataplane.telemetry.schema`, the one definition of a request record, so a column added there
appears here on the next deploy. Partitions are not crawled: a date-typed projection on `dt`
computes them, and reports prune with a plain `dt BETWEEN`.

Next to it, two small CSV tables Django publishes (`users`, `group_members`) that reports join.
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

from dataplane.telemetry.schema import (
    DIRECTORY_TABLES,
    LAKE_COLUMNS,
    PARTITION_KEYS,
    PARTITION_VALUE_LENGTH,
    directory_object_key,
)

from .nag import acknowledge, resource_finding

LAKE_PREFIX = "lake/requests/"
LAKE_ERROR_PREFIX = "lake/errors/"
ATHENA_RESULTS_PREFIX = "athena-results/"
LAKE_TABLE_NAME = "requests"

LAKE_ROOT_PREFIX = "lake/"

# The projection's first day; `NOW` (UTC) ends it, so no partition after today is enumerated.
_PROJECTION_FIRST_DAY = "2024-01-01"

# Records land within 5 minutes (reports run hourly at most); 64 MiB is also the smallest buffer
# Firehose accepts with dynamic partitioning, and keeps Parquet objects big enough to scan well.
_BUFFER_INTERVAL = Duration.minutes(5)
_BUFFER_SIZE = Size.mebibytes(64)


def partition_query() -> dict[str, str]:
    """The JQ (1.6) query per partition key: `dt` is the first characters of the row's `ts`."""
    (key, _), = PARTITION_KEYS
    return {key: f".ts[0:{PARTITION_VALUE_LENGTH}]"}


def firehose_partition_prefix() -> str:
    """`lake/requests/dt=!{partitionKeyFromQuery:dt}/`: the day of the record's own timestamp."""
    return LAKE_PREFIX + "/".join(f"{key}=!{{partitionKeyFromQuery:{key}}}" for key, _ in PARTITION_KEYS) + "/"


def projection_location_template(bucket_name: str) -> str:
    """`s3://<bucket>/lake/requests/dt=${dt}/`: the same path, in Athena's placeholders."""
    parts = [f"{key}=${{{key}}}" for key, _ in PARTITION_KEYS]
    return f"s3://{bucket_name}/{LAKE_PREFIX}" + "/".join(parts) + "/"


def _projection_parameters() -> dict[str, str]:
    params = {"projection.enabled": "true"}
    for key, _ in PARTITION_KEYS:
        params[f"projection.{key}.type"] = "date"
        params[f"projection.{key}.format"] = "yyyy-MM-dd"
        params[f"projection.{key}.range"] = f"{_PROJECTION_FIRST_DAY},NOW"
        params[f"projection.{key}.interval"] = "1"
        params[f"projection.{key}.interval.unit"] = "DAYS"
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
        self.directory_tables = {
            table: self._directory_table(stack, table, columns) for table, columns in DIRECTORY_TABLES.items()
        }
        for table in self.directory_tables.values():
            table.node.add_dependency(self.database)

        self.delivery_stream = firehose.DeliveryStream(
            self,
            "RequestLogStream",
            # DirectPut: the chat handler calls PutRecord itself (no Kinesis stream between).
            destination=firehose.S3Bucket(
                self.lake_bucket,
                data_output_prefix=firehose_partition_prefix(),
                # Firehose requires the error-output-type expression whenever the data prefix
                # uses expressions.
                error_output_prefix=LAKE_ERROR_PREFIX
                + "!{firehose:error-output-type}/year=!{timestamp:yyyy}/month=!{timestamp:MM}/"
                "day=!{timestamp:dd}/",
                data_format_conversion=firehose.DataFormatConversionProps(
                    # OpenX reads `ts` ("2026-11-29 05:12:03.123") as a timestamp by default.
                    input_format=firehose.InputFormat.OPENX_JSON,
                    # Parquet compresses its own pages (Snappy); the S3 object is not wrapped again.
                    output_format=firehose.OutputFormat.PARQUET,
                    schema_configuration=firehose.SchemaConfiguration.from_cfn_table(self.table),
                ),
                dynamic_partitioning=firehose.DynamicPartitioningProps(enabled=True),
                processors=[firehose.MetadataExtractionProcessor.jq16(partition_query())],
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
        # Format conversion reads the table's schema when the stream starts.
        self.delivery_stream.node.add_dependency(self.table)

        # The destination's role is CDK's `bucket.grantReadWrite` (wildcard action groups on the
        # lake bucket's objects); Firehose writes under generated object names, so an object
        # ARN pattern is unavoidable, and the bucket holds nothing but this stream's output.
        # Format conversion adds `glue:GetTable*` on the requests table only, and
        # `glue:GetSchemaVersion` on "*": the Glue Schema Registry action has no resource-level
        # scoping in CDK's grant, and it grants reading schemas, nothing in the lake.
        acknowledge(
            self.delivery_stream,
            "AwsSolutions-IAM5",
            "Firehose's S3 destination role (generated by CDK) reads/writes objects with "
            "generated names in the lake bucket only, and reads the table schema it converts "
            "records to Parquet with.",
            findings=[
                *(
                    f"Action::s3:{action}"
                    for action in ("Abort*", "DeleteObject*", "GetBucket*", "GetObject*", "List*")
                ),
                resource_finding(self, self.lake_bucket.arn_for_objects("*")),
                "Resource::*",
            ],
        )

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
                    "classification": "parquet",
                    "EXTERNAL": "TRUE",
                    **_projection_parameters(),
                    "storage.location.template": projection_location_template(
                        self.lake_bucket.bucket_name
                    ),
                },
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=columns,
                    location=f"s3://{self.lake_bucket.bucket_name}/{LAKE_PREFIX}",
                    input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library="org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                    ),
                ),
            ),
        )

    def directory_location(self, table: str) -> str:
        return f"{LAKE_ROOT_PREFIX}{directory_object_key(table).rsplit('/', 1)[0]}/"

    def _directory_table(self, stack: Stack, table: str, columns: tuple[str, ...]) -> glue.CfnTable:
        """A CSV table Django replaces whole before each report run (`analytics.directory`)."""
        return glue.CfnTable(
            self,
            f"{table.title().replace('_', '')}Table",
            catalog_id=stack.account,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=table,
                description="Published by Django before each report run; reports join it.",
                table_type="EXTERNAL_TABLE",
                parameters={"classification": "csv", "EXTERNAL": "TRUE", "skip.header.line.count": "1"},
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=[glue.CfnTable.ColumnProperty(name=name, type="string") for name in columns],
                    location=f"s3://{self.lake_bucket.bucket_name}/{self.directory_location(table)}",
                    input_format="org.apache.hadoop.mapred.TextInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                    # Quoted fields: a username may hold a comma.
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library="org.apache.hadoop.hive.serde2.OpenCSVSerde",
                        parameters={"separatorChar": ",", "quoteChar": '"', "escapeChar": "\\"},
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
