from tests.support.client import ChatKitClient
from tests.support.mock_llm import MockLLM


async def test_first_turn_streams_an_answer(client: ChatKitClient, mock_llm: MockLLM) -> None:
    mock_llm.default.text = "Paris is the capital of France."
    stream = await client.create_thread("What is the capital of France?")
    print(stream.events)
    assert stream.status == 200
    assert stream.assistant_text() == "Paris is the capital of France."
