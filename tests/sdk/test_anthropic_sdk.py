"""The official Anthropic Python SDK against Corelay's /v1/messages, unchanged but for the base URL:
routed once to an Anthropic-kind provider (recorded Anthropic traffic) and once to an OpenAI-kind one."""

import anthropic
import pytest

from conftest import GATEWAY_KEY

MESSAGES = [{"role": "user", "content": "Say hello"}]


def client(gateway, key=GATEWAY_KEY):
    # The SDK appends /v1/messages to the base URL.
    return anthropic.Anthropic(base_url=gateway.rsplit("/v1", 1)[0], api_key=key, max_retries=0, timeout=10)


def test_messages_to_an_anthropic_provider(gateway):
    message = client(gateway).messages.create(model="anthropic/claude-json", max_tokens=100, messages=MESSAGES)
    assert message.model == "anthropic/claude-json"
    assert message.content[0].text == "The capital of France is Paris."
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 10


def test_streamed_messages_from_an_anthropic_provider(gateway):
    with client(gateway).messages.stream(model="anthropic/claude-stream", max_tokens=100, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text
    assert final.model == "anthropic/claude-stream"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 5


def test_count_tokens_from_an_anthropic_provider(gateway):
    counted = client(gateway).messages.count_tokens(model="anthropic/claude-counted", messages=MESSAGES)
    assert counted.input_tokens == 14


def test_count_tokens_for_a_model_without_an_anthropic_provider_is_a_clear_400(gateway):
    with pytest.raises(anthropic.BadRequestError) as refused:
        client(gateway).messages.count_tokens(model="acme/chat-small", messages=MESSAGES)
    assert "counts tokens" in str(refused.value)


def test_messages_to_an_openai_provider(gateway):
    message = client(gateway).messages.create(model="acme/chat-small", max_tokens=100, messages=MESSAGES)
    assert message.model == "acme/chat-small"
    assert message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason == "end_turn"


def test_streamed_messages_from_an_openai_provider(gateway):
    with client(gateway).messages.stream(model="acme/chat-small", max_tokens=100, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text
    assert final.content[0].text == text


def test_errors_reach_the_sdk_as_its_own_exception_classes(gateway):
    with pytest.raises(anthropic.NotFoundError):
        client(gateway).messages.create(model="acme/nope", max_tokens=10, messages=MESSAGES)
    with pytest.raises(anthropic.AuthenticationError):
        client(gateway, key="wrong-key").messages.create(model="acme/chat-small", max_tokens=10, messages=MESSAGES)
