"""boto3 clients for the SQS queue and DynamoDB store backends, and what their errors mean.

Imported only by those backends (and so only when an ``sqs://`` or
``dynamodb://`` URL is configured): importing this module without boto3
installed raises :class:`~cv_analytics.exceptions.MissingDependencyError` with
the install hint.

Client settings, and why:

* ``read_timeout`` 30 s: above SQS's 20-second long poll, so a receive that
  waits the whole 20 s is not cut off and retried for nothing.
* ``connect_timeout`` 5 s: a connection that takes longer is down for our purposes.
* retries in ``standard`` mode, 3 attempts in all: exponential backoff with jitter on
  throttling, 5xx and connection errors
  (https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html).
  What still fails after that is raised as an *unavailable* error so that the
  caller (client spool, processor, Lambda) retries at its own pace.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigurationError, MissingDependencyError

try:
    import boto3
    import botocore.config
    import botocore.exceptions
except ImportError as exc:  # pragma: no cover - boto3 is installed wherever the tests run
    raise MissingDependencyError(
        f"the AWS backends (sqs://, dynamodb://) need boto3: pip install 'cv-analytics[aws]' ({exc})"
    ) from exc

if TYPE_CHECKING:
    from .metering import RequestCounter

CONNECT_TIMEOUT_SECONDS = 5.0
#: Must stay above the 20 s long poll (MAX_WAIT_SECONDS in queues/base.py).
READ_TIMEOUT_SECONDS = 30.0
#: Attempts in all, the first included (botocore's standard mode default).
MAX_ATTEMPTS = 3

#: Error codes that mean "too many requests, or a fault on AWS's side: try again later" (SQS, DynamoDB, CloudWatch).
RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "AWS.SimpleQueueService.RequestThrottled",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "KmsThrottled",
        "KMS.ThrottlingException",
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
    }
)

ClientError = botocore.exceptions.ClientError
BotoCoreError = botocore.exceptions.BotoCoreError


def client_config(
    *,
    connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
    read_timeout: float = READ_TIMEOUT_SECONDS,
    max_attempts: int = MAX_ATTEMPTS,
    max_pool_connections: int = 10,
) -> botocore.config.Config:
    """The botocore configuration both backends use (see the module docstring)."""
    return botocore.config.Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        # total_max_attempts counts the first attempt; botocore's "max_attempts" would count retries only
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        max_pool_connections=max_pool_connections,
    )


def make_client(
    service: str,
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    session: boto3.Session | None = None,
    config: botocore.config.Config | None = None,
    request_counter: RequestCounter | None = None,
) -> Any:
    """A boto3 client for ``service``; ``endpoint_url`` points it at an emulator (moto, LocalStack).

    The region is ``region``, else boto3's own sources (``AWS_DEFAULT_REGION``,
    the config file). Raises :class:`ConfigurationError` when there is none.
    """
    session = session or boto3.Session()
    try:
        client = session.client(
            service,
            region_name=region or None,
            endpoint_url=endpoint_url or None,
            config=config or client_config(),
        )
    except botocore.exceptions.NoRegionError as exc:
        raise ConfigurationError(
            f"no AWS region is set for the {service} client: export AWS_REGION (e.g. us-east-1)"
        ) from exc
    if request_counter is not None:
        request_counter.attach(client)
    return client


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError (``QueueDoesNotExist``...), else ``""``."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        # SQS's JSON protocol puts the old query-protocol code in QueryErrorCode
        return str(error.get("QueryErrorCode") or error.get("Code") or "")
    return ""


def error_codes(exc: BaseException) -> set[str]:
    """Every code a ClientError carries (``Code`` and SQS's ``QueryErrorCode``)."""
    if not isinstance(exc, ClientError):
        return set()
    error = exc.response.get("Error", {})
    return {str(c) for c in (error.get("Code"), error.get("QueryErrorCode")) if c}


def http_status(exc: BaseException) -> int:
    if isinstance(exc, ClientError):
        return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return 0


def is_unavailable(exc: BaseException) -> bool:
    """True when retrying later can succeed: connection trouble, timeouts, throttling, 5xx, credentials
    that could not be fetched (a metadata endpoint hiccup on Lambda or ECS looks the same)."""
    if isinstance(
        exc,
        (
            botocore.exceptions.ConnectionError,
            botocore.exceptions.HTTPClientError,
            botocore.exceptions.NoCredentialsError,
            botocore.exceptions.CredentialRetrievalError,
        ),
    ):
        return True
    if isinstance(exc, ClientError):
        return http_status(exc) >= 500 or bool(error_codes(exc) & RETRYABLE_CODES)
    return False


def describe(exc: BaseException) -> str:
    """A one-line description of a boto error, with the advice the user needs."""
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a role"
    if isinstance(exc, (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError)):
        return f"{exc}; check the network, AWS_REGION and AWS_ENDPOINT_URL"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code") or "?"
        if code in ("AccessDenied", "AccessDeniedException"):
            return f"access denied ({error.get('Message', '')}): grant the IAM role the permission named"
        return f"{code}: {error.get('Message', '')}"
    return str(exc)


@contextlib.contextmanager
def translated_errors(
    action: str,
    service: str,
    *,
    missing_codes: frozenset[str],
    missing: str,
    unavailable: type[Exception],
    error: type[Exception],
    missing_error: type[Exception] | None = None,
) -> Iterator[None]:
    """Turn boto errors into a seam's error types, the same way for every AWS backend.

    ``missing`` says what does not exist and what to do, for the codes in
    ``missing_codes``; retryable trouble becomes ``unavailable``; the rest ``error``.
    """
    try:
        yield
    except ClientError as exc:
        if error_codes(exc) & missing_codes:
            raise (missing_error or error)(f"cannot {action}: {missing.format(detail=describe(exc))}") from exc
        if is_unavailable(exc):
            raise unavailable(f"cannot {action} now ({describe(exc)}); retry later") from exc
        raise error(f"cannot {action}: {describe(exc)}") from exc
    except BotoCoreError as exc:
        if is_unavailable(exc):
            raise unavailable(f"cannot {action}: {service} is unreachable ({describe(exc)}); retry later") from exc
        raise error(f"cannot {action}: {describe(exc)}") from exc
