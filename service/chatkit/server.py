"""The ChatKit server: checks each request, then answers turns with the Agents SDK agent."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from dataclasses import replace
from typing import Any

from agents import Agent, RunHooks, Runner
from chatkit.actions import Action
from chatkit.agents import AgentContext, ClientToolCall, stream_agent_response
from chatkit.errors import CustomStreamError
from chatkit.server import ChatKitServer, NonStreamingResult, StreamingResult
from chatkit.store import AttachmentStore, NotFoundError
from chatkit.types import (
    Attachment,
    AttachmentsCreateReq,
    AttachmentsDeleteReq,
    AudioInput,
    ChatKitReq,
    ClientToolCallItem,
    FeedbackKind,
    InferenceOptions,
    InputTranscribeReq,
    ItemsListReq,
    ProgressUpdateEvent,
    StructuredInputItem,
    SyncCustomActionResponse,
    ThreadItem,
    ThreadItemReplacedEvent,
    ThreadMetadata,
    ThreadsAddClientToolOutputReq,
    ThreadsAddStructuredInputReq,
    ThreadsAddUserMessageReq,
    ThreadsCreateReq,
    ThreadsCustomActionReq,
    ThreadsDeleteReq,
    ThreadsListReq,
    ThreadsRetryAfterItemReq,
    ThreadsSyncCustomActionReq,
    ThreadStreamEvent,
    ThreadsUpdateReq,
    TranscriptionResult,
    UserMessageInput,
    UserMessageItem,
    UserMessageTextContent,
    WidgetItem,
)

from service.agents.context import TicketRoles, ToolContext
from service.agents.errors import ModelNotConfigured, provider_explanation
from service.agents.factory import ModelHandle
from service.agents.model_choice import ChoiceRefused, ModelChoice
from service.agents.titles import TitleWriter, fallback_title
from service.agents.tools.records import Ticket
from service.chatkit.attachments.store import FileAttachmentStore
from service.chatkit.attachments.threads import attachment_ids_of_thread, delete_attachments
from service.chatkit.attachments.transcription import Transcriber
from service.chatkit.converter import HistoryConverter
from service.chatkit.errors import FeatureNotEnabled, Forbidden, InvalidRequest
from service.chatkit.failures import Failure, FailureTable
from service.chatkit.ids import rewrite_fake_ids
from service.chatkit.store.base import ChatStore
from service.chatkit.ticket_actions import (
    check_ticket_action,
    is_ticket_action,
    perform_ticket_action,
)
from service.chatkit.ticket_widget import ticket_copy_text, ticket_widget
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
        run_hooks: RunHooks[ToolContext] | None = None,
        transcriber: Transcriber | None = None,
        ticket_roles: TicketRoles | None = None,
        model_choice: ModelChoice | None = None,
    ) -> None:
        """`run_hooks`: told of every model call of a turn (the token budget charges them)."""
        super().__init__(store, attachment_store)
        self.run_hooks = run_hooks
        self.transcriber = transcriber
        self.store: ChatStore = store
        self.model = model
        self.agent = agent
        self.failures = failures
        self.titles = titles
        self.history_limit = history_limit
        self.max_turns = max_turns
        self.converter = HistoryConverter()
        self.ticket_roles = ticket_roles or TicketRoles()
        self.model_choice = model_choice or ModelChoice(model.name)

    # --- requests ----------------------------------------------------------------------------

    async def handle(
        self, request: ChatKitReq, body: bytes, context: RequestContext
    ) -> StreamingResult | NonStreamingResult:
        """Answer a request (`body`, already parsed as `request`) after checking what the SDK
        would only fail on mid-stream; one turn at a time on a thread."""
        await self._check(request, context)
        doomed = await self._attachments_of_deleted_thread(request, context)
        result = await self.process(body, context)
        if doomed and isinstance(self.attachment_store, FileAttachmentStore):
            await delete_attachments(self.attachment_store.attachments, self.store, doomed, context)
        thread_id = getattr(request.params, "thread_id", None)
        if isinstance(result, StreamingResult) and thread_id is not None:
            return StreamingResult(self._one_turn_at_a_time(thread_id, context, result))
        return result

    async def _attachments_of_deleted_thread(
        self, request: ChatKitReq, context: RequestContext
    ) -> list[str]:
        if not isinstance(request, ThreadsDeleteReq) or self.attachment_store is None:
            return []
        return await attachment_ids_of_thread(self.store, request.params.thread_id, context)

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
            case AttachmentsDeleteReq():
                # The SDK deletes the bytes before it looks the record up: an unknown or foreign
                # id must be a 404 before anything is touched.
                await self.store.load_attachment(request.params.attachment_id, context)
            case InputTranscribeReq():
                if self.transcriber is None:
                    raise FeatureNotEnabled("voice input is not enabled on this server")
                self.transcriber.check(request.params)
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
                sender: WidgetItem | None = None
                if request.params.item_id is not None:
                    item = await self.store.load_item(
                        request.params.thread_id, request.params.item_id, context
                    )
                    if not isinstance(item, WidgetItem):
                        raise InvalidRequest(f"item {item.id} is not a widget")
                    sender = item
                if is_ticket_action(request.params.action):
                    await check_ticket_action(request.params.action, sender, self._who(context))
                elif isinstance(request, ThreadsSyncCustomActionReq):
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
        if self.agent is not None:
            self._agent_for(message.inference_options)  # refuses what is not offered

    def _agent_for(self, options: InferenceOptions | None) -> Agent[ToolContext]:
        """The agent on the model and with the tool choice the composer asked for."""
        assert self.agent is not None
        if options is None:
            return self.agent
        tool = options.tool_choice.id if options.tool_choice else None
        try:
            return self.model_choice.agent_for(self.agent, options.model, tool)
        except ChoiceRefused as exc:
            raise InvalidRequest(str(exc)) from None

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
            agent_context = AgentContext[RequestContext](
                thread=thread, store=self.store, request_context=context
            )
            tool_context = self._tool_context(agent_context, context)
            options = input_user_message.inference_options if input_user_message else None
            run = Runner.run_streamed(
                self._agent_for(options),
                await self._history(thread, context),
                context=tool_context,
                max_turns=self.max_turns,
                hooks=self.run_hooks,
            )
            turn.on_cancel(lambda: None if run.is_complete else run.cancel())
            events = stream_agent_response(agent_context, run)

            def new_message_id() -> str:
                return self.store.generate_item_id("message", thread, context)

            async for event in rewrite_fake_ids(events, new_message_id):
                yield event
                if title is None and wants_title and self.titles is not None:
                    # Asked once the answer has begun, so it never delays the first token.
                    title = asyncio.create_task(
                        self.titles.title_for(first_text, tool_context, self.run_hooks)
                    )
                    turn.on_cancel(title.cancel)
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
        return await self._converter(context).to_agent_input(items)

    def _converter(self, context: RequestContext) -> HistoryConverter:
        if not isinstance(self.attachment_store, FileAttachmentStore):
            return self.converter
        attachments = self.attachment_store.attachments

        async def attachment_bytes(attachment: Attachment) -> bytes | None:
            return await attachments.read_all(context.tenant_id, attachment.id)

        return HistoryConverter(attachment_bytes)

    def _who(self, context: RequestContext) -> ToolContext:
        """The caller as tools see them, with the data they may reach (their tenant's)."""
        return ToolContext(
            user_id=context.user_id,
            tenant_id=context.tenant_id,
            role=context.role,
            locale=context.locale,
            directory=self.store,
            tickets=self.store,
            ticket_roles=self.ticket_roles,
        )

    def _tool_context(
        self, agent_context: AgentContext[RequestContext], context: RequestContext
    ) -> ToolContext:
        async def report_progress(text: str) -> None:
            await agent_context.stream(ProgressUpdateEvent(text=text))

        async def show_ticket(ticket: Ticket) -> None:
            await agent_context.stream_widget(ticket_widget(ticket), ticket_copy_text(ticket))

        def call_client_tool(name: str, arguments: dict[str, Any]) -> None:
            agent_context.client_tool_call = ClientToolCall(name=name, arguments=arguments)

        return replace(
            self._who(context),
            report_progress=report_progress,
            show_ticket=show_ticket,
            call_client_tool=call_client_tool,
            client_tool_requested=lambda: agent_context.client_tool_call is not None,
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

    async def transcribe(
        self, audio_input: AudioInput, context: RequestContext
    ) -> TranscriptionResult:
        assert self.transcriber is not None  # `_check` refused the request otherwise
        return await self.transcriber.transcribe(audio_input)

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
        if is_ticket_action(action):
            return self._ticket_action(action, sender, context)
        return _fail_action(action, context)

    async def _ticket_action(
        self, action: Action[str, Any], sender: WidgetItem | None, context: RequestContext
    ) -> AsyncIterator[ThreadStreamEvent]:
        try:
            updated = await perform_ticket_action(action, sender, self._who(context))
        except (Forbidden, NotFoundError) as exc:  # the ticket changed since the request's check
            if context.turn is not None:
                context.turn.fail(exc)
            raise CustomStreamError(str(exc), allow_retry=False) from exc
        yield ThreadItemReplacedEvent(item=updated)

    async def sync_action(
        self,
        thread: ThreadMetadata,
        action: Action[str, Any],
        sender: WidgetItem | None,
        context: RequestContext,
    ) -> SyncCustomActionResponse:
        if not is_ticket_action(action):
            raise InvalidRequest(_no_action_handler(action))
        updated = await perform_ticket_action(action, sender, self._who(context))
        await self.store.save_item(thread.id, updated, context)
        return SyncCustomActionResponse(updated_item=updated)


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
