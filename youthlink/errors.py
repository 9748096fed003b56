"""Domain errors: raised by services, mapped to UserErrors (GraphQL) or HTTP statuses (REST)."""

from __future__ import annotations


class DomainError(Exception):
    kind = "INVALID"

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


class NotFound(DomainError):
    kind = "NOT_FOUND"


class Forbidden(DomainError):
    kind = "FORBIDDEN"


class Unauthenticated(DomainError):
    kind = "UNAUTHENTICATED"


class Conflict(DomainError):
    kind = "CONFLICT"


class Invalid(DomainError):
    kind = "INVALID"
