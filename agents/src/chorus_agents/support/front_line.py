"""``front-line``: answers customers' questions from the knowledge base and the order system.

An instruction-driven agent (:class:`~chorus_agents.instructed.InstructedAgent`: a model
and the helpdesk's ``search_articles``, ``get_article`` and ``get_order`` tools) that
customers, or a chat front end, reach by A2A. The answer is the reply; the loop audits
its ``model.call``, ``tool.call`` and ``decision`` records.

The code around the loop is the smallest that makes it run anywhere: an Agent's
``model`` has no field for a script file (the operator gives the runtime none), so
:class:`FrontLineAgent` runs the loop with the packaged :data:`SCRIPT`
(``front_line.script.yaml``) for the offline ``scripted`` provider, or with a given
provider. Unlike trading's compliance gate, nothing is filtered or published: every
message is a customer's question and deserves the model. The Agent keeps
``instructions`` and ``model`` in its spec (for its card and for people); a test checks
they are :data:`INSTRUCTIONS`.

With the script, a question naming an order (``ord-1002``) is answered from
``get_order`` (status, tracking); any other from the best article that
``search_articles`` finds (``get_article``); a question nothing matches gets a reply
saying a colleague will follow up.
"""

from __future__ import annotations

from pathlib import Path

from chorus_agents.handler import Context, Handler, Incoming, Reply
from chorus_agents.instructed import InstructedAgent
from chorus_agents.models import ModelProvider
from chorus_agents.models.scripted import ScriptedModel

SCRIPT = Path(__file__).with_name("front_line.script.yaml")
"""The scripted model's rules for this agent."""
INSTRUCTIONS = (
    "You are the shop's front-line customer service agent. Answer the customer's question "
    "in one or two friendly sentences. When they name an order (ord-...), look it up with "
    "get_order and tell them its status and tracking number. Otherwise search the help "
    "articles with search_articles, read the best one with get_article, and answer from it, "
    "naming the article. If nothing fits, say that a colleague will get back to them."
)


class FrontLineAgent(Handler):
    """The ``front-line`` agent; see the module docstring."""

    def __init__(self, model: ModelProvider | None = None, *, max_steps: int = 6) -> None:
        self.model = model if model is not None else ScriptedModel.from_file(SCRIPT)
        self.max_steps = max_steps

    async def on_message(self, message: Incoming, ctx: Context) -> Reply:
        loop = InstructedAgent(
            agent=ctx.agent,
            instructions=INSTRUCTIONS,
            model=self.model,
            tools=ctx.tools,
            audit=ctx.audit,
            max_steps=self.max_steps,
        )
        # The loop's own on_message adds the data parts to the text; the tools (the
        # agent's) stay open: the host closes them.
        return await loop.on_message(message, ctx)

    async def aclose(self) -> None:
        """Closes the model's client (the host closes the tools)."""
        close = getattr(self.model, "aclose", None)
        if close is not None:
            await close()
