"""The assistant's wiring: CV_ANALYTICS_RETRIEVAL, the LLM settings, and one retriever and assistant a process."""

from __future__ import annotations

import sys

import pytest

from cv_analytics.assistant import METHODS, LLMClient, embedding_available, retrieval
from cv_analytics.exceptions import ConfigurationError
from cv_analytics.wiring import RETRIEVAL_METHODS, Settings, Wiring

from .chat_server import ChatServer, Reply, completion


def test_settings_know_the_methods_the_assistant_has():
    assert RETRIEVAL_METHODS == METHODS


@pytest.mark.parametrize(("raw", "method"), [(None, "auto"), ("", "auto"), ("bm25", "bm25"), (" Embedding ", "embedding")])
def test_the_retrieval_method_comes_from_the_environment(raw, method: str):
    env = {} if raw is None else {"CV_ANALYTICS_RETRIEVAL": raw}
    assert Settings.from_env(env).retrieval_method == method


def test_a_bad_retrieval_method_names_the_variable_and_the_choices():
    with pytest.raises(ConfigurationError, match=r"CV_ANALYTICS_RETRIEVAL must be one of auto, embedding, bm25, got 'vectors'"):
        Settings.from_env({"CV_ANALYTICS_RETRIEVAL": "vectors"})


def test_the_wiring_makes_one_retriever_and_one_assistant(tmp_path):
    with Wiring(Settings.from_env({"CV_ANALYTICS_RETRIEVAL": "bm25"}, data_dir=tmp_path)) as wiring:
        assert wiring.retriever.method == "bm25" and wiring.retriever is wiring.retriever
        assert wiring.llm_client is None  # no CV_ANALYTICS_LLM_URL
        assert wiring.assistant is wiring.assistant
        assert wiring.assistant.retriever is wiring.retriever
        assert wiring.assistant.answer("Kafka?").match_quality == "full"


def test_auto_takes_embeddings_when_the_model_is_installed(tmp_path):
    with Wiring(Settings.from_env({}, data_dir=tmp_path)) as wiring:
        assert wiring.retriever.method == ("embedding" if embedding_available() else "bm25")


def test_embedding_asked_without_the_model_says_to_install_the_ai_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, retrieval.EMBEDDING_PACKAGE, None)
    monkeypatch.setattr(retrieval, "_model", None)
    with Wiring(Settings.from_env({"CV_ANALYTICS_RETRIEVAL": "embedding"}, data_dir=tmp_path)) as wiring:
        with pytest.raises(ConfigurationError, match=r"pip install 'cv-analytics\[ai\]'"):
            wiring.retriever


@pytest.mark.parametrize("env", [{"CV_ANALYTICS_LLM_URL": "http://127.0.0.1:9/v1"}, {"CV_ANALYTICS_LLM_MODEL": "m"}])
def test_no_llm_client_without_both_url_and_model(tmp_path, env):
    with Wiring(Settings.from_env(env, data_dir=tmp_path)) as wiring:
        assert wiring.llm_client is None


def test_the_assistant_answers_through_the_configured_llm(tmp_path, server: ChatServer):
    reply = {"answer": "Yes, Kafka.", "matchQuality": "full", "confidence": 0.8, "reasoning": "listed"}
    server.respond = lambda body: Reply(body=completion(reply))
    env = {
        "CV_ANALYTICS_RETRIEVAL": "bm25",
        "CV_ANALYTICS_LLM_URL": server.url,
        "CV_ANALYTICS_LLM_MODEL": "test-model",
        "CV_ANALYTICS_LLM_API_KEY": "sk-3",
    }
    with Wiring(Settings.from_env(env, data_dir=tmp_path)) as wiring:
        assert isinstance(wiring.llm_client, LLMClient) and wiring.llm_client is wiring.llm_client
        assert wiring.assistant.answer("Kafka?").answer == "Yes, Kafka."
    [request] = server.requests
    assert request["body"]["model"] == "test-model" and request["headers"]["Authorization"] == "Bearer sk-3"
