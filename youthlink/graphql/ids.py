"""Relay global IDs on input: decoded, checked for type, turned into UUIDs (or a clear INVALID_ID error)."""

from __future__ import annotations

import uuid

from strawberry import relay

from youthlink.errors import Invalid


def decode_id(value: str | relay.GlobalID, expected: str, field: str) -> uuid.UUID:
    try:
        gid = value if isinstance(value, relay.GlobalID) else relay.GlobalID.from_id(value)
        if gid.type_name != expected:
            raise Invalid("INVALID_ID", f"ID 类型不符：需要 {expected}，收到 {gid.type_name}", field)
        return uuid.UUID(gid.node_id)
    except (relay.GlobalIDValueError, ValueError, TypeError):
        raise Invalid("INVALID_ID", f"ID 无效：{field}", field) from None


def decode_optional(value: str | relay.GlobalID | None, expected: str, field: str) -> uuid.UUID | None:
    return None if value is None else decode_id(value, expected, field)


def encode_id(type_name: str, value: uuid.UUID) -> str:
    return relay.to_base64(type_name, str(value))
