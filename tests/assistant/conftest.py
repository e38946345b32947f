"""The packaged catalog, a retriever of each method the installation has, and a scripted chat-completions server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cv_analytics.assistant import Retriever, embedding_available, open_retriever
from cv_analytics.skills import SkillsCatalog, load_catalog

from .chat_server import ChatServer, chat_server

NO_MODEL = "the optional embedding model is not installed: pip install 'cv-analytics[ai]'"


@pytest.fixture(scope="session")
def catalog() -> SkillsCatalog:
    return load_catalog()


@pytest.fixture(scope="session")
def bm25(catalog: SkillsCatalog) -> Retriever:
    return open_retriever(catalog, "bm25")


@pytest.fixture(scope="session")
def embedding(catalog: SkillsCatalog) -> Retriever:
    if not embedding_available():
        pytest.skip(NO_MODEL)
    return open_retriever(catalog, "embedding")


@pytest.fixture(params=["bm25", "embedding"])
def retriever(request: pytest.FixtureRequest) -> Retriever:
    """Each retrieval method the package ships (embedding skipped, with the reason, without the model)."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def server() -> Iterator[ChatServer]:
    with chat_server() as running:
        yield running
