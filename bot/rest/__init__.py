"""Bitrix24 REST: `PortalClient`, the error table, the leaky bucket and the webhook URL."""

from __future__ import annotations

from bot.rest.bucket import (
    BucketLevel,
    BucketState,
    LeakyBucket,
    MemoryBucketState,
    OperatingGuard,
    StoreBucketState,
)
from bot.rest.client import (
    MAX_BATCH,
    BatchReply,
    PortalClient,
    Reply,
    chat_user_add_params,
)
from bot.rest.errors import (
    ERROR_TABLE,
    ErrorRow,
    error_from_response,
    hint_for,
    make_error,
    row_for,
)
from bot.rest.webhook import WebhookUrl

__all__ = [
    "ERROR_TABLE",
    "MAX_BATCH",
    "BatchReply",
    "BucketLevel",
    "BucketState",
    "ErrorRow",
    "LeakyBucket",
    "MemoryBucketState",
    "OperatingGuard",
    "PortalClient",
    "Reply",
    "StoreBucketState",
    "WebhookUrl",
    "chat_user_add_params",
    "error_from_response",
    "hint_for",
    "make_error",
    "row_for",
]
