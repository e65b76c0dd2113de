"""A development chat page at `/`: the real ChatKit web component, pointed at this server.

The component's bundle always comes from OpenAI's CDN, so the page needs internet access in
the browser. Off in production (PLAYGROUND_ENABLED).
"""

from __future__ import annotations

from quart import Blueprint, render_template
from quart.typing import ResponseReturnValue

from service.settings import Settings

CHATKIT_SCRIPT = "https://cdn.platform.openai.com/deployments/chatkit/chatkit.js"


def playground_blueprint(settings: Settings) -> Blueprint:
    blueprint = Blueprint("playground", __name__, template_folder="templates")

    @blueprint.get("/")
    async def playground() -> ResponseReturnValue:
        return await render_template(
            "playground.html",
            chatkit_script=CHATKIT_SCRIPT,
            api_path="/chatkit/api",
            provider=settings.llm_provider,
            dev_user_id=settings.dev_user_id,
        )

    return blueprint
