"""The job store on one DynamoDB table: the seam's decisions written with condition expressions.

The table (:data:`cv_analytics.stores.dynamodb_tables.JOBS_TABLE`, key ``pk``):

``job#<jobId>``
    A job: the whole :class:`~.model.Job` as JSON in ``job`` (a result keeps
    whatever nesting it has, which a DynamoDB map would cap at 32 levels), or
    zlib-compressed in ``jobZ`` past 100 KiB,
    beside the attributes the conditions and indexes read: ``version``,
    ``expiresAt`` and ``ttl`` (epoch seconds), ``entity`` (``job``),
    ``status``, ``type`` and ``created`` (creation time in zero-padded
    microseconds, ``#``, the job id: its string order is the seam's
    ``(created_at, job_id)`` order).
``idempotency#<sha256 of the key>``
    An ``Idempotency-Key`` (hashed: a key of any length makes a valid
    partition key), with ``key``, ``jobId``, ``requestHash``, ``expiresAt``
    and its own ``ttl``.

Writes: a change is a ``PutItem`` on the condition ``version = <the version
loaded>``, so of two writers racing on a job one wins and the other decides
again (:class:`~.base.JobStore`); a new job with its key is one
``TransactWriteItems`` whose key put holds only while no unexpired record has
the key. Reads of one job are strongly consistent. Lists ``Query`` an index
(by status, by type, or all jobs) newest first, ``created < <cursor>``, with
the other filters and expiry in a filter expression; index reads are
eventually consistent, so a job submitted a moment ago may be missing from a
list (never from :meth:`get`). DynamoDB's TTL deletes expired items, up to
days late; every read filters them out itself.
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..._backoff import backoff_delay
from ...boto.clients import MAX_ATTEMPTS, ClientError, client_config, error_codes, make_client
from ...clock import Clock
from ...exceptions import StoreError, StoreUnavailableError
from .. import dynamodb_tables as tables
from ..dynamodb.requests import ConditionFailed, DynamoDBRequests
from .base import JobStore
from .model import IdempotencyRecord, Job, JobStatus

if TYPE_CHECKING:
    import boto3

    from ...boto.metering import RequestCounter

__all__ = ["DynamoDBJobStore"]

KEY = tables.JOBS_TABLE.partition_key.name
TTL = tables.JOBS_TABLE.ttl_attribute or "ttl"
JOB_ENTITY = "job"
_JOB_PREFIX = "job#"
_KEY_PREFIX = "idempotency#"
#: A job's JSON past this size is stored compressed; compressed, it may take up to MAX_JOB_BYTES
#: (DynamoDB's item limit is 400 KB, names and the other attributes included).
COMPRESS_OVER_BYTES = 100 * 1024
MAX_JOB_BYTES = 380 * 1024
#: Rounds of a new job's transaction lost to a concurrent writer of its idempotency key before giving up.
MAX_INSERT_ROUNDS = 5
#: Cancellation reasons of a transaction worth another round, and those that mean "slow down".
_RETRIED_REASONS = frozenset({"None", "TransactionConflict"})
_THROTTLED_REASONS = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"})
#: A health check reads this key; no item ever has it.
_PING_KEY = "health#check"


def job_key(job_id: str) -> dict[str, Any]:
    return {KEY: {"S": _JOB_PREFIX + job_id}}


def idempotency_item_key(key: str) -> dict[str, Any]:
    return {KEY: {"S": _KEY_PREFIX + hashlib.sha256(key.encode()).hexdigest()}}


def created_sort_key(created_at: float, job_id: str) -> str:
    """``created``: microseconds zero-padded to 17 digits (the year 5138), then the job id."""
    return f"{round(created_at * 1_000_000):017d}#{job_id}"


def _number(value: float) -> dict[str, str]:
    return {"N": repr(float(value))}


def job_item(job: Job) -> dict[str, Any]:
    return {
        **job_key(job.job_id),
        "entity": {"S": JOB_ENTITY},
        "status": {"S": job.status.value},
        "type": {"S": job.type},
        "created": {"S": created_sort_key(job.created_at, job.job_id)},
        "version": {"N": str(job.version)},
        "expiresAt": _number(job.expires_at),
        TTL: {"N": str(math.ceil(job.expires_at))},
        **_job_attribute(job),
    }


def _job_attribute(job: Job) -> dict[str, Any]:
    """The job as JSON in ``job``; past :data:`COMPRESS_OVER_BYTES`, zlib-compressed in ``jobZ``
    (a 256 KiB input and a 256 KiB result together would pass DynamoDB's 400 KB item limit)."""
    text = json.dumps(job.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":")).encode()
    if len(text) <= COMPRESS_OVER_BYTES:
        return {"job": {"S": text.decode()}}
    packed = zlib.compress(text, 6)
    if len(packed) > MAX_JOB_BYTES:
        raise StoreError(
            f"job {job.job_id} takes {len(packed) // 1024} KiB even compressed, over the "
            f"{MAX_JOB_BYTES // 1024} KiB a DynamoDB item can hold of it: make its input or result smaller"
        )
    return {"jobZ": {"B": packed}}


def job_of_item(item: Mapping[str, Any]) -> Job:
    if "jobZ" in item:
        return Job.model_validate_json(zlib.decompress(item["jobZ"]["B"]))
    return Job.model_validate_json(item["job"]["S"])


def idempotency_item(record: IdempotencyRecord) -> dict[str, Any]:
    return {
        **idempotency_item_key(record.key),
        "key": {"S": record.key},
        "jobId": {"S": record.job_id},
        "requestHash": {"S": record.request_hash},
        "expiresAt": _number(record.expires_at),
        TTL: {"N": str(math.ceil(record.expires_at))},
    }


def record_of_item(item: Mapping[str, Any]) -> IdempotencyRecord:
    return IdempotencyRecord(
        key=item["key"]["S"],
        request_hash=item["requestHash"]["S"],
        job_id=item["jobId"]["S"],
        expires_at=float(item["expiresAt"]["N"]),
    )


class DynamoDBJobStore(JobStore):
    """Job store on the jobs table (see the module docstring).

    ``table`` is its name (``CV_ANALYTICS_JOBS_TABLE``; by default the one
    :data:`~cv_analytics.stores.dynamodb_tables.JOBS_TABLE` gives with the
    default prefix). Pass a boto3 DynamoDB ``client``, or ``region``,
    ``endpoint_url`` and ``session`` to have one made.
    """

    expires_by_itself = True

    def __init__(
        self,
        table: str | None = None,
        *,
        client: Any = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        session: boto3.Session | None = None,
        clock: Clock | None = None,
        request_counter: RequestCounter | None = None,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        super().__init__(clock=clock)
        self.table = table or tables.JOBS_TABLE.name()
        if client is None:
            client = make_client(
                "dynamodb", region=region, endpoint_url=endpoint_url, session=session,
                config=client_config(max_attempts=max_attempts), request_counter=request_counter,
            )  # fmt: skip
        elif request_counter is not None:
            request_counter.attach(client)
        self.client = client
        self._requests = DynamoDBRequests(client, self.clock, table_variables=tables.JOBS_TABLE.env_var)

    # -- primitives of the seam -------------------------------------------------

    def _load(self, job_id: str) -> Job | None:
        response = self._requests.call(
            f"read job {job_id}", "get_item", TableName=self.table, Key=job_key(job_id), ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else job_of_item(item)

    def _insert(self, job: Job, key: IdempotencyRecord | None, now: float) -> IdempotencyRecord | None:
        new_job = {
            "Put": {
                "TableName": self.table,
                "Item": job_item(job),
                "ConditionExpression": f"attribute_not_exists({KEY})",
            }
        }
        if key is None:
            try:
                self._requests.call(f"create job {job.job_id}", "put_item", **new_job["Put"])
            except ConditionFailed:
                raise StoreError(f"job id {job.job_id} is taken already: ids must be unique") from None
            return None
        claim_key = {
            "Put": {
                "TableName": self.table,
                "Item": idempotency_item(key),
                # a record past its 24 hours may still be there (TTL lags): it no longer holds the key
                "ConditionExpression": f"attribute_not_exists({KEY}) OR expiresAt <= :now",
                "ExpressionAttributeValues": {":now": _number(now)},
            }
        }
        for round_number in range(1, MAX_INSERT_ROUNDS + 1):
            reasons = self._transact([claim_key, new_job], f"create job {job.job_id} with its idempotency key")
            if reasons is None:
                return None
            if reasons[1] == "ConditionalCheckFailed":
                raise StoreError(f"job id {job.job_id} is taken already: ids must be unique")
            if reasons[0] == "ConditionalCheckFailed":
                held = self._held_key(key.key, now)
                if held is not None:
                    return held
            # the record expired or went meanwhile, or another transaction touched it: try again
            self.clock.sleep(backoff_delay(round_number, 0.005, 0.1, self._rng))
        raise StoreUnavailableError(f"idempotency key {key.key!r} is contended; retry")

    def _replace(self, job: Job, expected_version: int) -> bool:
        try:
            self._requests.call(
                f"update job {job.job_id}",
                "put_item",
                TableName=self.table,
                Item=job_item(job),
                ConditionExpression="#version = :expected",
                ExpressionAttributeNames={"#version": "version"},
                ExpressionAttributeValues={":expected": {"N": str(expected_version)}},
            )
        except ConditionFailed:
            return False
        return True

    def _query(
        self, status: JobStatus | None, job_type: str | None, limit: int, after: tuple[float, str] | None, now: float
    ) -> list[Job]:
        names = {"#partition": "entity"}
        values: dict[str, Any] = {":partition": {"S": JOB_ENTITY}, ":now": _number(now)}
        index = tables.JOBS_ENTITY_INDEX.name
        filters = ["expiresAt > :now"]
        if status is not None:
            index, names["#partition"], values[":partition"] = tables.JOBS_STATUS_INDEX.name, "status", {"S": status.value}
            if job_type is not None:
                names["#type"] = "type"
                values[":type"] = {"S": job_type}
                filters.append("#type = :type")
        elif job_type is not None:
            index, names["#partition"], values[":partition"] = tables.JOBS_TYPE_INDEX.name, "type", {"S": job_type}
        condition = "#partition = :partition"
        if after is not None:
            condition += " AND created < :after"
            values[":after"] = {"S": created_sort_key(*after)}
        request = {
            "TableName": self.table,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "FilterExpression": " AND ".join(filters),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,  # newest first
            "Limit": limit,  # read before the filter: pages repeat until enough pass it
        }
        jobs: list[Job] = []
        for page in self._requests.pages("query", **request):
            jobs += [job for job in map(job_of_item, page.get("Items", [])) if not job.expired(now)]
            if len(jobs) >= limit:
                break
        return jobs[:limit]

    def _forget_key(self, key: str, job_id: str) -> None:
        try:
            self._requests.call(
                "forget an idempotency key",
                "delete_item",
                TableName=self.table,
                Key=idempotency_item_key(key),
                ConditionExpression="jobId = :job",
                ExpressionAttributeValues={":job": {"S": job_id}},
            )
        except ConditionFailed:
            pass  # gone already, or taken over by another job: it is not ours to delete

    def _purge_expired(self, now: float) -> int:
        return 0  # DynamoDB's TTL deletes expired items; reads skip them until then

    def ping(self) -> None:
        self._requests.call("check the jobs table", "get_item", TableName=self.table, Key={KEY: {"S": _PING_KEY}})

    def close(self) -> None:
        self.client.close()

    # -- helpers ------------------------------------------------------------------

    def _held_key(self, key: str, now: float) -> IdempotencyRecord | None:
        response = self._requests.call(
            "read an idempotency key", "get_item", TableName=self.table, Key=idempotency_item_key(key), ConsistentRead=True
        )
        item = response.get("Item")
        if item is None:
            return None
        record = record_of_item(item)
        return record if record.expires_at > now else None

    def _transact(self, items: list[dict[str, Any]], action: str) -> list[str] | None:
        """Write ``items`` in one transaction: None when written, else each item's cancellation reason
        (``ConditionalCheckFailed``, ``TransactionConflict`` or ``None``). Other reasons raise."""
        with self._requests.guard(action):
            try:
                self.client.transact_write_items(TransactItems=items, ReturnConsumedCapacity="TOTAL")
            except ClientError as exc:
                if "TransactionCanceledException" not in error_codes(exc):
                    raise
                codes = [str(r.get("Code") or "None") for r in exc.response.get("CancellationReasons") or []]
                if len(codes) != len(items):  # no reasons to go by: try again
                    return ["TransactionConflict"] * len(items)
                if "ConditionalCheckFailed" in codes or set(codes) <= _RETRIED_REASONS:
                    return codes
                if set(codes) & _THROTTLED_REASONS:
                    raise StoreUnavailableError(f"cannot {action} now: DynamoDB is throttling ({codes}); retry later") from exc
                raise
        return None
