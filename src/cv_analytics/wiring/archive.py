"""Where ``export --to`` writes: a local file (atomically) or an S3 object (the archive before a teardown)."""

from __future__ import annotations

import os
import pathlib
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO
from urllib.parse import urlparse

from ..exceptions import ConfigurationError, CVAnalyticsError
from .settings import Settings


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key); a :class:`ConfigurationError` saying what is missing."""
    parsed = urlparse(url)
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    if parsed.scheme != "s3" or not bucket or not key or key.endswith("/"):
        raise ConfigurationError(f"--to {url!r}: an S3 destination looks like s3://bucket/path/export.jsonl")
    return bucket, key


@contextmanager
def destination(settings: Settings, target: str) -> Iterator[IO[str]]:
    """A text stream whose content ends up at ``target`` only if the block completes (no half-written export)."""
    is_s3 = target.startswith("s3://")
    bucket_key = parse_s3_url(target) if is_s3 else None
    final = None if is_s3 else pathlib.Path(target)
    where = final.parent if final is not None else None
    if where is not None and not where.is_dir():
        raise ConfigurationError(f"--to {target}: the directory {where} does not exist")
    fd, tmp_name = tempfile.mkstemp(prefix=".cv-analytics-export-", dir=where)
    tmp = pathlib.Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as stream:
            yield stream
        if final is not None:
            os.replace(tmp, final)
        else:
            assert bucket_key is not None
            _upload(settings, tmp, *bucket_key)
    finally:
        tmp.unlink(missing_ok=True)


def _upload(settings: Settings, path: pathlib.Path, bucket: str, key: str) -> None:
    try:
        from ..boto.clients import BotoCoreError, ClientError, describe, make_client
    except ImportError as exc:
        raise ConfigurationError("export to S3 needs boto3: pip install 'cv-analytics[aws]'") from exc
    client = make_client("s3", region=settings.aws_region, endpoint_url=settings.aws_endpoint_url)
    upload: Callable[..., None] = client.upload_file  # multipart above 8 MB, retried by boto3
    try:
        upload(str(path), bucket, key)
    except (ClientError, BotoCoreError) as exc:
        raise CVAnalyticsError(f"could not upload the export to s3://{bucket}/{key}: {describe(exc)}") from exc
    except Exception as exc:  # boto3's S3UploadFailedError wraps the ClientError
        raise CVAnalyticsError(f"could not upload the export to s3://{bucket}/{key}: {exc}") from exc
