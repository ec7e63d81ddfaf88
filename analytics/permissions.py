"""What the Athena report engine needs from IAM (plain Python: deploy/ imports it without Django).

Athena runs a query with the caller's identity: besides the four calls `AthenaEngine` makes,
the caller must be allowed what Athena does on its behalf, i.e. read the table's definition
from Glue, read the lake's request objects and write the results into the results prefix.
"""
from __future__ import annotations

from dataplane.permissions import Need, Resource, need

REPORT_ENGINE_NEEDS: tuple[Need, ...] = (
    need(
        Resource.REPORT_WORKGROUP,
        "athena:StartQueryExecution",
        "athena:GetQueryExecution",
        "athena:GetQueryResults",
        "athena:StopQueryExecution",
        why="the calls AthenaEngine makes",
    ),
    need(
        Resource.LAKE_CATALOG,
        "glue:GetDatabase",
        "glue:GetTable",
        "glue:GetTables",
        "glue:GetPartition",
        "glue:GetPartitions",
        why="Athena plans the query from the Glue table, as the caller",
    ),
    need(
        Resource.LAKE_BUCKETS,
        "s3:ListBucket",
        "s3:GetBucketLocation",
        why="Athena lists the lake and checks the results bucket, as the caller",
    ),
    need(Resource.REQUEST_LOG_OBJECTS, "s3:GetObject", why="Athena reads the request log, as the caller"),
    need(
        Resource.DIRECTORY_OBJECTS, "s3:GetObject", why="Athena reads the users and group_members tables reports join"
    ),
    need(
        Resource.QUERY_RESULT_OBJECTS,
        "s3:GetObject",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
        why="Athena writes (and the engine pages through) the results, as the caller",
    ),
)

# `analytics.directory` replaces the users/group_members objects before each report run.
DIRECTORY_PUBLISH_NEEDS: tuple[Need, ...] = (
    need(Resource.DIRECTORY_OBJECTS, "s3:PutObject", why="publish who is who and who is in which group"),
)
