"""``front-line``: answers customers' questions from the knowledge base and the order system.

An instruction-driven agent (:class:`~chorus_agents.instructed.InstructedAgent`: a model
and the helpdesk's ``search_articles``, ``get_article`` and ``get_order`` tools) that
customers, or a chat front end, reach by A2A. The answer is the reply; the loop audits
its ``model.call``, ``tool.call`` and ``decision`` records.

The code around the loop is the smallest that makes it run anywhere:
:class:`FrontLineAgent` runs the loop with the spec's model (``ctx.model``; for the
offline ``scripted`` provider, the spec's ``model.script``), or with a given provider.
Unlike trading's compliance gate, nothing is filtered or published: every message is a
customer's question and deserves the model. The Agent keeps
``instructions`` and ``model`` in its spec (for its card and for people); a test checks
they are :data:`INSTRUCTIONS`.

With the script, a question naming an order (``ord-1002``) is answered from
``get_order`` (status, tracking); any other from the best article that
``search_articles`` finds (``get_article``); a question nothing matches gets a reply
saying a colleague will follow up.
"""

from __future__ import annotations

from chorus_agents.domain import GatedInstructedAgent
from chorus_agents.handler import Context, Incoming, Reply

"""The scripted model's rules for this agent."""
INSTRUCTIONS = (
    "You are the shop's front-line customer service agent. Answer the customer's question "
    "in one or two friendly sentences. When they name an order (ord-...), look it up with "
    "get_order and tell them its status and tracking number. Otherwise search the help "
    "articles with search_articles, read the best one with get_article, and answer from it, "
    "naming the article. If nothing fits, say that a colleague will get back to them."
)


class FrontLineAgent(GatedInstructedAgent):
    """The ``front-line`` agent (no gate: every message reaches the model); see the
    module docstring."""

    INSTRUCTIONS = INSTRUCTIONS
    DEFAULT_MAX_STEPS = 6

    async def on_message(self, message: Incoming, ctx: Context) -> Reply:
        # The loop's own on_message adds the data parts to the text; the tools (the
        # agent's) stay open: the host closes them.
        return await self.loop(ctx, ctx.tools).on_message(message, ctx)
