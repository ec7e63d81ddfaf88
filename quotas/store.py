"""The one place the control plane gets the data plane's store from.

Services and selectors call `store_get()` at call time, so tests can hand in a particular store
(a DynamoDB store on a local server, or one pointed at a dead endpoint) by patching this name.
Any failure to *build* the store is reported like a failure to reach it.
"""
from __future__ import annotations

from dataplane.errors import StoreUnavailableError
from dataplane.stores.base import Store


def store_get() -> Store:
    from gateway_project.gateway import gateway_store

    try:
        return gateway_store()
    except StoreUnavailableError:
        raise
    except Exception as error:  # a misconfigured or unreachable store must not break the admin
        raise StoreUnavailableError(
            f"The gateway store could not be opened: {type(error).__name__}: {error}"
        ) from error
