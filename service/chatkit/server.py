"""The ChatKit server: checks each request, then answers turns with the Agents SDK agent."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from typing import Any

from agents import Agent, Runner
from chatkit.actions import Action
from chatkit.agents import AgentContext, stream_agent_response
from chatkit.errors import CustomStreamError
from chatkit.server import ChatKitServer, NonStreamingResult, StreamingResult
from chatkit.store import AttachmentStore, NotFoundError
from chatkit.types import (
    AttachmentsCreateReq,
    AttachmentsDeleteReq,
    ChatKitReq,
    ClientToolCallItem,
    FeedbackKind,
    InputTranscribeReq,
    ItemsListReq,
    ProgressUpdateEvent,
    StructuredInputItem,
    SyncCustomActionResponse,
    ThreadItem,
    ThreadMetadata,
    ThreadsAddClientToolOutputReq,
    ThreadsAddStructuredInputReq,
    ThreadsAddUserMessageReq,
    ThreadsCreateReq,
    ThreadsCustomActionReq,
    ThreadsListReq,
    ThreadsRetryAfterItemReq,
    ThreadsSyncCustomActionReq,
    ThreadStreamEvent,
    ThreadsUpdateReq,
    UserMessageInput,
    UserMessageItem,
    UserMessageTextContent,
    WidgetItem,
)

from service.agents.context import ToolContext
from service.agents.errors import ModelNotConfigured, provider_explanation
from service.agents.factory import ModelHandle
from service.agents.titles import TitleWriter, fallback_title
from service.chatkit.converter import HistoryConverter
from service.chatkit.errors import FeatureNotEnabled, InvalidRequest
from service.chatkit.failures import Failure, FailureTable
from service.chatkit.ids import rewrite_fake_ids
from service.chatkit.store.base import ChatStore
from service.request_context import RequestContext, Turn

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100
MAX_TITLE_LENGTH = 200


def user_text(item: UserMessageItem) -> str:
    return "".join(
        part.text if isinstance(part, UserMessageTextContent) else f"@{part.text}"
        for part in item.content
    )


class ChatServer(ChatKitServer[RequestContext]):
    def __init__(
        self,
        store: ChatStore,
        model: ModelHandle,
        agent: Agent[ToolContext] | None,
        *,
        failures: FailureTable,
        titles: TitleWriter | None,
        history_limit: int,
        max_turns: int,
        attachment_store: AttachmentStore[RequestContext] | None = None,
    ) -> None:
        super().__init__(store, attachment_store)
        self.store: ChatStore = store
        self.model = model
        self.agent = agent
        self.failures = failures
        self.titles = titles
        self.history_limit = history_limit
        self.max_turns = max_turns
        self.converter = HistoryConverter()

    # --- requests ----------------------------------------------------------------------------

    async def handle(
        self, request: ChatKitReq, body: bytes, context: RequestContext
    ) -> StreamingResult | NonStreamingResult:
        """Answer a request (`body`, already parsed as `request`) after checking what the SDK
        would only fail on mid-stream; one turn at a time on a thread."""
        await self._check(request, context)
        result = await self.process(body, context)
        thread_id = getattr(request.params, "thread_id", None)
        if isinstance(result, StreamingResult) and thread_id is not None:
            return StreamingResult(self._one_turn_at_a_time(thread_id, context, result))
        return result

    async def _one_turn_at_a_time(
        self, thread_id: str, context: RequestContext, source: AsyncIterable[bytes]
    ) -> AsyncGenerator[bytes, None]:
        async with self.store.turn_lock(thread_id, context):
            async for chunk in source:
                yield chunk

    async def _check(self, request: ChatKitReq, context: RequestContext) -> None:
        # Ownership is checked here too (the SDK reloads the thread later), so that nobody can
        # take or wait on the turn lock of a thread that is not theirs.
        match request:
            case AttachmentsCreateReq() | AttachmentsDeleteReq() if self.attachment_store is None:
                raise FeatureNotEnabled("file uploads are not enabled on this server")
            case InputTranscribeReq():
                raise FeatureNotEnabled("voice input is not enabled on this server")
            case ThreadsListReq() | ItemsListReq():
                limit = request.params.limit
                if limit is not None and not 1 <= limit <= MAX_PAGE_SIZE:
                    raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE_SIZE}")
            case ThreadsUpdateReq():
                if len(request.params.title) > MAX_TITLE_LENGTH:
                    raise InvalidRequest(f"title must be at most {MAX_TITLE_LENGTH} characters")
            case ThreadsCreateReq():
                await self._check_input(request.params.input, context)
            case ThreadsAddUserMessageReq():
                await self.store.load_thread(request.params.thread_id, context)
                await self._check_input(request.params.input, context)
            case ThreadsRetryAfterItemReq():
                item = await self.store.load_item(
                    request.params.thread_id, request.params.item_id, context
                )
                if not isinstance(item, UserMessageItem):
                    raise InvalidRequest(f"item {item.id} is not a user message; only those retry")
            case ThreadsAddClientToolOutputReq():
                page = await self.store.load_thread_items(
                    request.params.thread_id, None, 1, "desc", context
                )
                last = page.data[0] if page.data else None
                if not (isinstance(last, ClientToolCallItem) and last.status == "pending"):
                    raise InvalidRequest("no client tool call is waiting for output in this thread")
            case ThreadsAddStructuredInputReq():
                item = await self.store.load_item(
                    request.params.thread_id, request.params.item_id, context
                )
                if not isinstance(item, StructuredInputItem) or item.status != "pending":
                    raise InvalidRequest(f"item {item.id} is not a pending structured input")
            case ThreadsCustomActionReq() | ThreadsSyncCustomActionReq():
                await self.store.load_thread(request.params.thread_id, context)
                if request.params.item_id is not None:
                    item = await self.store.load_item(
                        request.params.thread_id, request.params.item_id, context
                    )
                    if not isinstance(item, WidgetItem):
                        raise InvalidRequest(f"item {item.id} is not a widget")
                if isinstance(request, ThreadsSyncCustomActionReq):
                    raise InvalidRequest(_no_action_handler(request.params.action))
            case _:
                pass

    async def _check_input(self, message: UserMessageInput, context: RequestContext) -> None:
        has_text = any(
            not isinstance(part, UserMessageTextContent) or part.text.strip()
            for part in message.content
        )
        if not has_text and not message.attachments:
            raise InvalidRequest("the message is empty")
        for attachment_id in message.attachments:
            await self.store.load_attachment(attachment_id, context)

    # --- hooks -------------------------------------------------------------------------------

    async def respond(
        self,
        thread: ThreadMetadata,
        input_user_message: UserMessageItem | None,
        context: RequestContext,
    ) -> AsyncIterator[ThreadStreamEvent]:
        turn = context.turn or Turn(request_type="respond", request_id="")
        turn.set_thread(thread.id)
        wants_title = thread.title is None and input_user_message is not None
        first_text = user_text(input_user_message) if input_user_message else ""
        title: asyncio.Task[str] | None = None
        try:
            if self.agent is None:
                raise ModelNotConfigured(self.model.unavailable_reason or "")
            if wants_title and self.titles is not None:
                title = asyncio.create_task(self.titles.title_for(first_text))
                turn.on_cancel(title.cancel)
            agent_context = AgentContext[RequestContext](
                thread=thread, store=self.store, request_context=context
            )
            run = Runner.run_streamed(
                self.agent,
                await self._history(thread, context),
                context=self._tool_context(agent_context, context),
                max_turns=self.max_turns,
            )
            turn.on_cancel(lambda: None if run.is_complete else run.cancel())
            events = stream_agent_response(agent_context, run)

            def new_message_id() -> str:
                return self.store.generate_item_id("message", thread, context)

            async for event in rewrite_fake_ids(events, new_message_id):
                yield event
        except (asyncio.CancelledError, GeneratorExit):
            turn.cancel()
            raise
        except Exception as exc:
            turn.cancel()
            turn.fail(exc)
            failure = self.failures.classify(exc)
            if wants_title:
                thread.title = fallback_title(first_text)
            self._log_failure(failure, exc)
            raise CustomStreamError(failure.message, allow_retry=failure.retryable) from exc
        if wants_title:
            thread.title = await self._title(title, first_text)

    @staticmethod
    def _log_failure(failure: Failure, exc: BaseException) -> None:
        if not failure.expected:
            logger.error("turn failed", exc_info=exc)
            return
        explanation = provider_explanation(exc)
        logger.warning(
            "turn failed: %s%s",
            failure.error_type,
            f" (provider said: {explanation})" if explanation else "",
            extra={"error_type": failure.error_type},
        )

    @staticmethod
    async def _title(title: asyncio.Task[str] | None, first_text: str) -> str:
        if title is None:
            return fallback_title(first_text)
        try:
            return await title
        except asyncio.CancelledError:
            title.cancel()
            raise

    async def _history(self, thread: ThreadMetadata, context: RequestContext) -> list[Any]:
        page = await self.store.load_thread_items(
            thread.id, None, self.history_limit, "desc", context
        )
        items: list[ThreadItem] = list(reversed(page.data))
        return await self.converter.to_agent_input(items)

    @staticmethod
    def _tool_context(
        agent_context: AgentContext[RequestContext], context: RequestContext
    ) -> ToolContext:
        async def report_progress(text: str) -> None:
            await agent_context.stream(ProgressUpdateEvent(text=text))

        return ToolContext(
            user_id=context.user_id,
            tenant_id=context.tenant_id,
            role=context.role,
            locale=context.locale,
            report_progress=report_progress,
        )

    async def handle_stream_cancelled(
        self,
        thread: ThreadMetadata,
        pending_items: list[ThreadItem],
        context: RequestContext,
    ) -> None:
        if context.turn is not None:
            context.turn.cancel()
        await super().handle_stream_cancelled(thread, pending_items, context)

    async def add_feedback(
        self,
        thread_id: str,
        item_ids: list[str],
        feedback: FeedbackKind,
        context: RequestContext,
    ) -> None:
        await self.store.save_feedback(thread_id, item_ids, feedback, context)

    def action(
        self,
        thread: ThreadMetadata,
        action: Action[str, Any],
        sender: WidgetItem | None,
        context: RequestContext,
    ) -> AsyncIterator[ThreadStreamEvent]:
        return _fail_action(action, context)

    async def sync_action(
        self,
        thread: ThreadMetadata,
        action: Action[str, Any],
        sender: WidgetItem | None,
        context: RequestContext,
    ) -> SyncCustomActionResponse:
        raise InvalidRequest(_no_action_handler(action))


def _no_action_handler(action: Action[str, Any]) -> str:
    return f"this server has no handler for the action {action.type!r}"


async def _fail_action(
    action: Action[str, Any], context: RequestContext
) -> AsyncIterator[ThreadStreamEvent]:
    error = CustomStreamError(_no_action_handler(action).capitalize() + ".", allow_retry=False)
    if context.turn is not None:
        context.turn.fail(error)
    raise error
    yield  # pragma: no cover  (makes this an async generator)


__all__ = ["ChatServer", "NotFoundError"]
