"""Domain errors: raised by services, mapped to UserErrors (GraphQL) or HTTP statuses (REST)."""

from __future__ import annotations


class DomainError(Exception):
    kind = "INVALID"

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    @property
    def extensions(self) -> dict[str, str | None]:
        # Read by graphql-core when a query resolver raises: the client gets `extensions.code`.
        return {"code": self.code, "field": self.field}


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
