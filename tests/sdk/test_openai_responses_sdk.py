"""The official OpenAI Python SDK's Responses API (`client.responses`) against Corelay: passed through
to a provider that speaks it (a mock replaying OpenAI's recorded bytes), and translated for providers
that do not (an OpenAI chat mock, a recorded Anthropic stream)."""

import json

import openai
import pytest
from openai import OpenAI

from conftest import GATEWAY_KEY

PARIS = "The capital of France is Paris."


def client(base_url):
    # No retries: a test must see the gateway's first answer.
    return OpenAI(base_url=base_url, api_key=GATEWAY_KEY, max_retries=0, timeout=10)


def test_a_responses_body_passes_through(gateway):
    response = client(gateway).responses.create(model="openai/o3-pro", input="What is the capital of France?")
    assert response.output_text == PARIS
    assert response.model == "openai/o3-pro"
    assert response.usage.input_tokens == 24 and response.usage.output_tokens == 8


def test_a_responses_stream_passes_through(gateway):
    stream = client(gateway).responses.create(
        model="openai/o3-pro-stream", input="What is the capital of France?", stream=True
    )
    events = list(stream)
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == PARIS
    assert events[-1].type == "response.completed"
    assert events[-1].response.usage.output_tokens == 9


@pytest.mark.parametrize("model", ["acme/chat-small", "anthropic/claude-json"])
def test_a_response_is_translated_from_other_providers(gateway, model):
    response = client(gateway).responses.create(model=model, input="Say hello", max_output_tokens=64)
    assert response.status == "completed"
    assert response.model == model
    assert response.output_text
    assert response.usage.output_tokens > 0


@pytest.mark.parametrize("model", ["acme/chat-small", "anthropic/claude-stream"])
def test_a_stream_is_translated_from_other_providers(gateway, model):
    with client(gateway).responses.stream(model=model, input="Say hello", max_output_tokens=64) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text and final.output_text
    assert final.status == "completed"
    assert final.usage.output_tokens > 0


def test_server_side_conversation_state_is_refused_in_openai_terms(gateway):
    with pytest.raises(openai.BadRequestError) as raised:
        client(gateway).responses.create(model="acme/chat-small", input="hi", previous_response_id="resp_123")
    assert "previous_response_id" in str(raised.value)


WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
        "additionalProperties": False,
    },
    "strict": True,
}


@pytest.mark.parametrize("model", ["acme/chat-small", "anthropic/claude-stream", "acme/tools"])
def test_the_sdk_reads_every_part_of_a_translated_stream(gateway, model):
    stream = client(gateway).responses.create(
        model=model,
        instructions="Be brief.",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "What's the weather in New York City?"}]}],
        tools=[WEATHER_TOOL],
        max_output_tokens=64,
        stream=True,
    )
    events = list(stream)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert [e.type for e in events[:2]] == ["response.created", "response.in_progress"]
    assert events[0].response.model == model and events[0].response.id.startswith("resp_")
    final = events[-1]
    assert final.type == "response.completed" and final.response.status == "completed"
    usage = final.response.usage
    assert usage.output_tokens > 0 and usage.total_tokens == usage.input_tokens + usage.output_tokens
    done = [e.item for e in events if e.type == "response.output_item.done"]
    assert [i.id for i in done] == [i.id for i in final.response.output]
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == final.response.output_text
    calls = [i for i in final.response.output if i.type == "function_call"]
    for call in calls:
        streamed = "".join(
            e.delta for e in events if e.type == "response.function_call_arguments.delta" and e.item_id == call.id
        )
        assert streamed == call.arguments
        json.loads(call.arguments)
    if model == "acme/tools":
        assert calls and calls[0].name == "get_weather"
    else:
        assert text


def test_built_in_tools_are_refused_by_name_when_translating(gateway):
    with pytest.raises(openai.BadRequestError) as raised:
        client(gateway).responses.create(model="acme/chat-small", input="hi", tools=[{"type": "web_search"}])
    assert "web_search" in str(raised.value)
