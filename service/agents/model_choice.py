"""The composer's model picker and tool choice: which model and tool a turn may ask for.

`MODEL_ALLOWLIST` names the models of the configured provider a user may pick besides the
default one; empty means the default model only. A tool choice must name one of the agent's
tools. Anything else is refused with a reason the user can read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from agents import Agent, Model, ModelSettings

from service.agents.context import ToolContext
from service.agents.factory import PROVIDERS
from service.settings import Settings


class ChoiceRefused(ValueError):
    """The turn asked for a model or tool this server does not offer; `str()` says which."""


def with_default_model(settings: Settings, name: str) -> Settings:
    """The same settings with `name` as the configured provider's model."""
    spec = PROVIDERS[settings.llm_provider]
    return settings.model_copy(update={spec.model_setting.lower(): name})


@dataclass(frozen=True, slots=True)
class ModelChoice:
    default: str
    """The configured model's name."""
    alternatives: Mapping[str, Model] = field(default_factory=dict)
    """The other models a user may pick, by name."""

    def check(self, model: str | None, tool: str | None, agent: Agent[ToolContext]) -> None:
        if model and model != self.default and model not in self.alternatives:
            offered = ", ".join([self.default, *self.alternatives])
            raise ChoiceRefused(
                f"the model {model[:100]!r} is not available here; choose {offered}"
            )
        if tool and tool not in {each.name for each in agent.tools}:
            raise ChoiceRefused(f"the tool {tool[:100]!r} is not available to the assistant")

    def agent_for(
        self, agent: Agent[ToolContext], model: str | None, tool: str | None
    ) -> Agent[ToolContext]:
        """`agent` running on the chosen model and starting with the chosen tool."""
        self.check(model, tool, agent)
        chosen = agent
        if model and model != self.default:
            chosen = chosen.clone(model=self.alternatives[model])
        if tool:
            # The SDK resets the choice after the tool ran (reset_tool_choice), so it is used once.
            settings = chosen.model_settings.resolve(ModelSettings(tool_choice=tool))
            chosen = chosen.clone(model_settings=settings)
        return chosen
