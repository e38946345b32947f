"""LLMClient against a real chat-completions server on loopback: what we send, and each kind of reply."""

from __future__ import annotations

import pytest

from cv_analytics.assistant import LLMClient, LLMError, LLMReplyError
from cv_analytics.assistant.answers import ANSWER_SCHEMA

from .chat_server import ChatServer, Reply, completion

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Kafka?"}]


def test_the_request_is_the_openai_shape_with_the_model_messages_schema_and_key(server: ChatServer):
    server.respond = lambda body: Reply(body=completion({"answer": "yes"}))
    with LLMClient(server.url + "/", "test-model", "sk-secret") as llm:
        assert llm.chat(MESSAGES, json_schema=ANSWER_SCHEMA) == {"answer": "yes"}
    [request] = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-secret"
    body = request["body"]
    assert body["model"] == "test-model"
    assert body["messages"] == MESSAGES
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "cv_answer", "schema": ANSWER_SCHEMA, "strict": True},
    }


def test_without_a_schema_the_text_comes_back_and_no_key_sends_no_authorization(server: ChatServer):
    server.respond = lambda body: Reply(body=completion("A short summary."))
    with LLMClient(server.url, "m") as llm:
        assert llm.chat(MESSAGES) == "A short summary."
    [request] = server.requests
    assert "response_format" not in request["body"]
    assert "Authorization" not in request["headers"]


@pytest.mark.parametrize(
    "reply",
    [
        Reply(body=completion("not json {")),
        Reply(body=completion("[1, 2]")),  # JSON, but not an object
        Reply(body=completion("")),
        Reply(body={"choices": []}),
        Reply(body={"error": "nothing here"}),
        Reply(body="<html>proxy error page</html>"),
    ],
)
def test_a_malformed_reply_is_a_permanent_reply_error(server: ChatServer, reply: Reply):
    server.respond = lambda body: reply
    with LLMClient(server.url, "m") as llm, pytest.raises(LLMReplyError) as info:
        llm.chat(MESSAGES, json_schema=ANSWER_SCHEMA)
    assert info.value.transient is False


@pytest.mark.parametrize(
    ("status", "transient"), [(400, False), (401, False), (404, False), (422, False), (429, True), (500, True), (503, True)]
)
def test_4xx_is_permanent_and_5xx_and_429_are_transient(server: ChatServer, status: int, transient: bool):
    server.respond = lambda body: Reply(status=status, body={"error": {"message": "model says no"}})
    with LLMClient(server.url, "m") as llm, pytest.raises(LLMError) as info:
        llm.chat(MESSAGES)
    assert info.value.transient is transient
    assert info.value.status == status
    assert str(status) in str(info.value) and "model says no" in str(info.value)


def test_a_slow_endpoint_times_out_as_a_transient_error(server: ChatServer):
    server.respond = lambda body: Reply(body=completion("late"), delay=2.0)
    with LLMClient(server.url, "m", timeout=0.3) as llm, pytest.raises(LLMError, match="timed out") as info:
        llm.chat(MESSAGES)
    assert info.value.transient is True


def test_an_endpoint_that_is_down_is_a_transient_error():
    with LLMClient("http://127.0.0.1:9", "m", timeout=2.0) as llm, pytest.raises(LLMError, match="cannot reach") as info:
        llm.chat(MESSAGES)
    assert info.value.transient is True
