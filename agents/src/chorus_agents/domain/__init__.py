"""What the reference domains' agents share (trading, maintenance, support, traffic, icu).

- :mod:`.wire`: the Flink jobs' signal envelope (:class:`Envelope`), the JSON the agents
  send each other and read from tools (:class:`DomainWire`, bound to a domain's error
  class), and the rule named in a back end's refusal (:func:`refusal_rule`);
- :mod:`.gated`: an instruction-driven loop behind a code-defined gate
  (:class:`GatedInstructedAgent`), with the tool gateway that records what the loop did
  (:class:`RecordingGateway`).

A domain's ``common.py`` keeps what is its own: topics, its error class, its signal's
fields and rules.
"""

from chorus_agents.domain.gated import GatedInstructedAgent, RecordingGateway
from chorus_agents.domain.wire import DomainWire, Envelope, dumps, refusal_rule

__all__ = [
    "DomainWire",
    "Envelope",
    "GatedInstructedAgent",
    "RecordingGateway",
    "dumps",
    "refusal_rule",
]
