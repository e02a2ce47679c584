"""The official OpenAI Python SDK against Corelay, unchanged but for the base URL."""

import openai
import pytest
from openai import OpenAI

from conftest import GATEWAY_KEY

MODEL = "acme/chat-small"
MESSAGES = [{"role": "user", "content": "Say hello"}]


def client(base_url, key=GATEWAY_KEY):
    # No retries: a test must see the gateway's first answer.
    return OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=10)


def test_chat_completion(gateway):
    completion = client(gateway).chat.completions.create(model=MODEL, messages=MESSAGES)
    assert completion.model == MODEL
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens > 0


def test_streaming_chat_completion(gateway):
    stream = client(gateway).chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert all(chunk.model == MODEL for chunk in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_stream_helper_accumulates_the_final_message(gateway):
    with client(gateway).chat.completions.stream(model=MODEL, messages=MESSAGES) as stream:
        final = stream.get_final_completion()
    assert final.model == MODEL
    assert final.choices[0].message.content


def test_models_list(gateway):
    ids = [m.id for m in client(gateway).models.list()]
    assert ids == [
        "acme/chat-small",
        "acme/embed",
        "acme/rate-limited",
        "acme/tools",
        "anthropic/claude-counted",
        "anthropic/claude-json",
        "anthropic/claude-sonnet-4",
        "anthropic/claude-stream",
        "openai/o3-pro",
        "openai/o3-pro-stream",
    ]


def test_unknown_model_raises_not_found(gateway):
    with pytest.raises(openai.NotFoundError) as err:
        client(gateway).chat.completions.create(model="acme/nope", messages=MESSAGES)
    assert err.value.code == "model_not_found"
    assert err.value.param == "model"


def test_wrong_gateway_key_raises_authentication_error(gateway):
    with pytest.raises(openai.AuthenticationError):
        client(gateway, key="not-the-gateway-key").chat.completions.create(model=MODEL, messages=MESSAGES)


def test_bad_request_raises_bad_request_error(gateway):
    with pytest.raises(openai.BadRequestError) as err:
        client(gateway).chat.completions.create(model=MODEL, messages=MESSAGES, stream="yes")
    assert err.value.param == "stream"


def test_provider_rate_limit_reaches_the_sdk_as_rate_limit_error(gateway):
    with pytest.raises(openai.RateLimitError) as err:
        client(gateway).chat.completions.create(model="acme/rate-limited", messages=MESSAGES)
    assert err.value.response.headers.get("retry-after") == "3"
