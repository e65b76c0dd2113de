"""Voice input (`input.transcribe`) through the provider's transcription endpoint (mock)."""

from __future__ import annotations

import base64

from tests.conftest import ServerFactory, provider_env
from tests.e2e.test_attachments import START_SECONDS
from tests.support.client import ChatKitClient
from tests.support.mock_llm import MockLLM

AUDIO = b"\x1aE\xdf\xa3" + b"webm audio frames" * 50


async def test_the_recording_becomes_composer_text(
    server_factory: ServerFactory, mock_llm: MockLLM
) -> None:
    env = {
        **provider_env("openai", mock_llm),
        "TRANSCRIBE_MODEL": "gpt-4o-mini-transcribe",
        "ATTACHMENTS_MAX_BYTES": "2000",
    }
    server = server_factory(env, start=False).start(timeout=START_SECONDS)
    async with ChatKitClient(server.url, user="u1") as client:
        response = await client.call(
            "input.transcribe",
            audio_base64=base64.b64encode(AUDIO).decode(),
            mime_type="audio/webm;codecs=opus",
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"text": "Hello from the microphone."}
        [sent] = mock_llm.transcriptions
        assert AUDIO in sent.body
        assert b'name="model"\r\n\r\ngpt-4o-mini-transcribe' in sent.body
        assert b"audio/webm" in sent.body

        too_long = await client.call(
            "input.transcribe",
            audio_base64=base64.b64encode(b"x" * 3000).decode(),
            mime_type="audio/webm",
        )
        assert too_long.status_code == 413
        garbled = await client.call("input.transcribe", audio_base64="%%%", mime_type="audio/ogg")
        assert garbled.status_code == 400
        assert "base64" in garbled.json()["error"]["message"]
        video = await client.call("input.transcribe", audio_base64="AAAA", mime_type="video/mp4")
        assert video.status_code == 400
    assert len(mock_llm.transcriptions) == 1


async def test_a_provider_without_transcription_says_so(
    server_factory: ServerFactory, mock_llm: MockLLM
) -> None:
    env = {**provider_env("gemini", mock_llm), "TRANSCRIBE_MODEL": "whatever"}
    server = server_factory(env, start=False).start(timeout=START_SECONDS)
    async with ChatKitClient(server.url, user="u1") as client:
        response = await client.call(
            "input.transcribe", audio_base64="AAAA", mime_type="audio/webm"
        )
    assert response.status_code == 400
    assert "no transcription endpoint" in response.json()["error"]["message"]
    assert mock_llm.transcriptions == []
