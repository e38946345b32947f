"""Acknowledging, extending and failing received messages of the embedded queue."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ...exceptions import ReceiptHandleError
from ..base import Message
from .schema import (
    _DELETE_CHUNK,
    _GID,
    _MESSAGE_COLUMNS,
    _marks,
    _parse_receipt_handle,
)

if TYPE_CHECKING:
    from .queue import SQLiteQueue  # noqa: F401 - the class this is mixed into


class SQLiteQueueAcks:
    """Mixed into :class:`~cv_analytics.queues.sqlite.queue.SQLiteQueue`: delete, change visibility, dead-letter.

    A receipt handle is ``<queue id>:<seq>:<token>``: a stale one (the message
    was received again since) deletes nothing and is refused by a visibility change.
    """

    def delete_batch(self, receipt_handles: Sequence[str]) -> None:
        """Delete received messages, any number in one transaction.

        Ten per request is an SQS API limit, not a semantic one; here commits are
        the cost, so a worker acknowledging several batches pays for one."""
        for start in range(0, len(receipt_handles), _DELETE_CHUNK):
            self._delete_batch(list(receipt_handles[start : start + _DELETE_CHUNK]))

    def _delete_batch(self, receipt_handles: list[str]) -> None:
        wanted: dict[int, int] = {}
        for handle in receipt_handles:
            parsed = _parse_receipt_handle(handle)
            if parsed is not None and parsed[0] == self._id:
                wanted[parsed[1]] = parsed[2]
        if not wanted:
            return
        with self._backend.guard(f"delete from queue {self.name!r} in"), self._backend.transaction() as conn:
            rows = conn.execute(
                f"SELECT seq, receipt, gid, queue_id FROM queue_messages WHERE seq IN ({_marks(len(wanted))})",
                list(wanted),
            ).fetchall()
            # A stale handle (the message was received again since) deletes nothing. The
            # check is done here rather than in the DELETE's WHERE: a DELETE by rowids
            # alone is several times faster than one that must test each row.
            current = [(seq, gid) for seq, receipt, gid, queue_id in rows if queue_id == self._id and wanted[seq] == receipt]
            if not current:
                return
            conn.execute(
                f"DELETE FROM queue_messages WHERE seq IN ({_marks(len(current))})", [seq for seq, _ in current]
            )
            self._refresh_groups(conn, {gid for _, gid in current})
        self._backend.notifier.bump(self._id)

    def _change_visibility(self, receipt_handle: str, timeout_seconds: float, reason: str | None) -> None:
        seq, token = self._parse_own_handle(receipt_handle)
        with self._backend.guard(f"change visibility in queue {self.name!r} of"), self._backend.transaction() as conn:
            now = self._clock.now()
            row = conn.execute(
                "UPDATE queue_messages SET visible_at = ?1, "
                "failure_reason = coalesce(?2, failure_reason), "
                "failed_on_receive = CASE WHEN ?2 IS NULL THEN failed_on_receive ELSE receive_count END "
                "WHERE seq = ?3 AND queue_id = ?4 AND receipt = ?5 RETURNING gid",
                (now + timeout_seconds, reason, seq, self._id, token),
            ).fetchone()
            if row is None:
                raise self._stale(receipt_handle)
            self._refresh_groups(conn, (row[0],))
        self._backend.notifier.bump(self._id)

    def _dead_letter(self, message: Message, reason: str) -> None:
        dlq = self.require_dead_letter_queue("dead-letter a message")
        seq, token = self._parse_own_handle(message.receipt_handle)
        with self._backend.guard(f"dead-letter a message of queue {self.name!r} in"), self._backend.transaction() as conn:
            row = conn.execute(
                f"SELECT {', '.join(_MESSAGE_COLUMNS)} FROM queue_messages WHERE seq = ? AND queue_id = ? AND receipt = ?",
                (seq, self._id, token),
            ).fetchone()
            if row is None:
                raise self._stale(message.receipt_handle)
            self._move_to_dead_letter_queue(conn, self._clock.now(), [(row, reason)])
            self._refresh_groups(conn, (row[_GID],))
        self._backend.notifier.bump(self._id, dlq._id)

    def _parse_own_handle(self, receipt_handle: str) -> tuple[int, int]:
        parsed = _parse_receipt_handle(receipt_handle)
        if parsed is None or parsed[0] != self._id:
            raise ReceiptHandleError(
                f"{receipt_handle!r} is not a receipt handle of queue {self.name!r}: "
                "pass the receipt_handle of a message received from this queue"
            )
        return parsed[1], parsed[2]

    def _stale(self, receipt_handle: str) -> ReceiptHandleError:
        return ReceiptHandleError(
            f"receipt handle {receipt_handle!r} of queue {self.name!r} is stale: the message was deleted, "
            "moved to the dead-letter queue, or received again since (only the newest receipt handle counts); "
            "receive the message again"
        )
