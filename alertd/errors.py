"""The error tree. The CLI catches only ``AlertdError`` and maps it to an exit code.

    AlertdError                      exit 1 unless a subclass says otherwise
    ├── ConfigError                  exit 2: invalid or unreadable configuration
    ├── ModelError                   exit 3: model missing, tampered or built for other libraries
    ├── StoreError                   exit 4: database unreachable or schema newer than this code
    └── DeliveryError                one failed send; ``retryable`` decides retry vs dead-letter
        ├── RetryableDeliveryError   receiver down, 5xx, 429, timeouts: back off and retry
        └── PermanentDeliveryError   4xx, bad address: retrying cannot help
            └── EndpointGoneError    410 Gone: the endpoint is disabled until re-enabled

Feed problems are not exceptions that escape: a feed's fetch or parse failure is
recorded on that feed and logged, and the cycle goes on with the other feeds.
"""

from __future__ import annotations


class AlertdError(Exception):
    exit_code = 1


class ConfigError(AlertdError):
    exit_code = 2

    def __init__(self, problems: list["ConfigProblem"]):  # noqa: F821 - defined in config.py
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ModelError(AlertdError):
    exit_code = 3


class StoreError(AlertdError):
    exit_code = 4


class DeliveryError(AlertdError):
    retryable = True

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class RetryableDeliveryError(DeliveryError):
    retryable = True


class PermanentDeliveryError(DeliveryError):
    retryable = False


class EndpointGoneError(PermanentDeliveryError):
    """The receiver says the endpoint no longer exists; stop sending to it."""
