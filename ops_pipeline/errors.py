"""Errors the domain raises; the CLI and the API map them to exit codes and HTTP statuses."""


class OpsError(Exception):
    """A user-facing error with a machine code; the message names the field and value at fault."""

    code = "ERROR"
    http_status = 400

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        if code:
            self.code = code


class InvalidInput(OpsError):
    code = "VALIDATION_ERROR"
    http_status = 400


class NotFound(OpsError):
    code = "NOT_FOUND"
    http_status = 404


class Conflict(OpsError):
    code = "CONFLICT"
    http_status = 409


class InsufficientFunds(Conflict):
    code = "INSUFFICIENT_FUNDS"
