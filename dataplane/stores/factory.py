"""Build the configured store: DynamoDB in AWS, the SQLite file on the embedded default."""
from __future__ import annotations

from dataplane.config import GatewayConfig
from dataplane.stores.base import Store


def store_from_config(config: GatewayConfig) -> Store:
    if config.store == "dynamodb":
        from dataplane.stores.dynamodb import DynamoDBStore

        return DynamoDBStore(
            policies_table=config.policies_table,
            usage_table=config.usage_table,
            cache_table=config.cache_table,
            region=config.region,
            endpoint_url=config.dynamodb_endpoint_url or None,
        )
    from dataplane.stores.sqlite import SQLiteStore

    return SQLiteStore(config.sqlite_path)
