"""What the built-in job types need, handed in by the wiring (nothing here reads the environment)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..clock import Clock, SystemClock

if TYPE_CHECKING:
    from ..assistant import LLMClient, Retriever
    from ..insights import Insights
    from ..skills import SkillsCatalog


class JobDependencies:
    """Each dependency from a zero-argument function, called once on first use (a worker that only runs
    reports never loads the retrieval model)."""

    def __init__(
        self,
        *,
        skills_catalog: Callable[[], SkillsCatalog],
        insights: Callable[[], Insights],
        retriever: Callable[[], Retriever] | None = None,
        llm_client: Callable[[], LLMClient | None] | None = None,
        sweep_orphans: Callable[[], object] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._makers: dict[str, Callable[[], Any] | None] = {
            "skills_catalog": skills_catalog,
            "insights": insights,
            "retriever": retriever,
            "llm_client": llm_client,
        }
        self._made: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.sweep_orphans = sweep_orphans
        self.clock = clock or SystemClock()

    def _get(self, name: str) -> Any:
        with self._lock:
            if name not in self._made:
                maker = self._makers[name]
                self._made[name] = None if maker is None else maker()
            return self._made[name]

    @property
    def skills_catalog(self) -> SkillsCatalog:
        return self._get("skills_catalog")  # type: ignore[no-any-return]

    @property
    def insights(self) -> Insights:
        return self._get("insights")  # type: ignore[no-any-return]

    @property
    def retriever(self) -> Retriever:
        retriever = self._get("retriever")
        if retriever is None:
            raise RuntimeError("no retriever was wired for the cv job types")
        return retriever  # type: ignore[no-any-return]

    @property
    def llm_client(self) -> LLMClient | None:
        return self._get("llm_client")  # type: ignore[no-any-return]
