from __future__ import annotations

import enum

from sqlalchemy import Enum


def str_enum(cls: type[enum.Enum], name: str) -> Enum:
    """A VARCHAR with a CHECK constraint: new values need a migration, never an ALTER TYPE."""
    return Enum(cls, name=name, native_enum=False, create_constraint=True, length=24,
                values_callable=lambda e: [m.value for m in e])
