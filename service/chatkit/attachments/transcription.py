"""Voice input (`input.transcribe`): the composer's recording, turned into text by the
provider's transcription endpoint (`TRANSCRIBE_MODEL`)."""

from __future__ import annotations

import binascii
from base64 import b64decode

from chatkit.types import AudioInput, InputTranscribeParams, TranscriptionResult
from openai import AsyncOpenAI

from service.agents.factory import PROVIDERS
from service.chatkit.attachments.errors import UploadTooLarge
from service.chatkit.errors import FeatureNotEnabled, InvalidRequest
from service.settings import Settings

FILE_SUFFIXES = {
    "audio/webm": "webm",
    "audio/ogg": "ogg",
    "audio/mp4": "mp4",
    "audio/mpeg": "mp3",
    "audio/wav": "wav",
}
NO_ENDPOINT = {"gemini": "Gemini's OpenAI-compatible endpoint has no transcription endpoint"}


class Transcriber:
    def __init__(
        self, client: AsyncOpenAI | None, model: str, *, max_bytes: int, unavailable: str | None
    ) -> None:
        self.client = client
        self.model = model
        self.max_bytes = max_bytes
        self.unavailable = unavailable

    def check(self, params: InputTranscribeParams) -> None:
        """Refuse, before the SDK decodes it, what cannot be transcribed."""
        if self.unavailable:
            raise FeatureNotEnabled(f"voice input is not available: {self.unavailable}")
        if len(params.audio_base64) // 4 * 3 > self.max_bytes:
            raise UploadTooLarge(f"recordings may be at most {self.max_bytes} bytes")
        media_type = params.mime_type.split(";", 1)[0].strip().lower()
        if media_type not in FILE_SUFFIXES:
            raise InvalidRequest(f"audio of type {media_type!r} cannot be transcribed")
        try:
            b64decode(params.audio_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidRequest("audio_base64 is not valid base64") from exc

    async def transcribe(self, audio: AudioInput) -> TranscriptionResult:
        assert self.client is not None  # `check` refused the request otherwise
        media_type = audio.media_type.lower()
        result = await self.client.audio.transcriptions.create(
            model=self.model,
            file=(f"recording.{FILE_SUFFIXES.get(media_type, 'webm')}", audio.data, media_type),
        )
        return TranscriptionResult(text=result.text.strip())


def create_transcriber(settings: Settings) -> Transcriber | None:
    """None when `TRANSCRIBE_MODEL` is unset (voice input off)."""
    if settings.transcribe_model is None:
        return None
    limit = settings.attachments_max_bytes
    model = settings.transcribe_model
    if settings.llm_provider in NO_ENDPOINT:
        return Transcriber(None, model, max_bytes=limit, unavailable=NO_ENDPOINT["gemini"])
    spec = PROVIDERS[settings.llm_provider]
    key = getattr(settings, spec.key_setting.lower())
    if key is None and spec.key_required:
        return Transcriber(None, model, max_bytes=limit, unavailable=f"{spec.key_setting} is unset")
    client = AsyncOpenAI(
        api_key=key.get_secret_value() if key is not None else "unused",
        base_url=getattr(settings, spec.base_url_setting.lower()),
        timeout=settings.llm_timeout_seconds,
        max_retries=settings.llm_max_retries,
    )
    return Transcriber(client, model, max_bytes=limit, unavailable=None)
