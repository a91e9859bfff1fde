"""A scripted model's latency: fixed or a seeded lognormal, per conversation, cancellable."""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest
from chorus_agents.models import ChatMessage, ModelRequest, ScriptedModel, ScriptError
from chorus_agents.models.latency import Latency, LatencyError

pytestmark = pytest.mark.unit


def ask(text: str) -> ModelRequest:
    return ModelRequest(messages=(ChatMessage(role="user", text=text),))


def test_a_lognormal_latency_has_its_median_and_spread_and_repeats_per_conversation() -> None:
    latency = Latency.parse({"median": 2.0, "sigma": 0.8, "seed": 7})
    draws = [latency.seconds(ask(f"event {i}")) for i in range(4000)]
    assert statistics.median(draws) == pytest.approx(2.0, rel=0.06)
    # sigma 0.8: the 84th percentile is e^0.8 = 2.23 times the median.
    assert statistics.quantiles(draws, n=100)[83] / 2.0 == pytest.approx(2.23, rel=0.08)
    assert latency.seconds(ask("event 5")) == draws[5]  # the same conversation, the same wait
    other = Latency.parse({"median": 2.0, "sigma": 0.8, "seed": 8})
    assert other.seconds(ask("event 5")) != draws[5]  # another seed, another draw
    assert Latency.parse({"fixed": 1.5}).seconds(ask("x")) == 1.5


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"fixed": 1, "median": 2}, "give fixed, or median"),
        ({}, "give fixed, or median"),
        ({"fixed": -1}, "latency.fixed: a number of seconds >= 0"),
        ({"median": "2s"}, "latency.median: a number of seconds"),
        ({"median": 2, "seed": 1.5}, "latency.seed: an integer"),
        ({"fixed": 1, "jitter": 2}, "unknown keys ['jitter']"),
        (3, "a mapping"),
    ],
)
def test_a_bad_latency_is_refused_naming_the_field(value: object, message: str) -> None:
    with pytest.raises(LatencyError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Latency.parse(value)


def test_a_script_with_a_latency_waits_and_a_cancel_stops_the_wait() -> None:
    model = ScriptedModel.from_document(
        {"latency": {"fixed": 0.3}, "rules": [{"reply": "done"}]}, source="s"
    )

    async def run() -> None:
        began = time.monotonic()
        answer = await model.complete(ask("go"))
        assert answer.text == "done" and time.monotonic() - began >= 0.3
        slow = ScriptedModel.from_document({"latency": {"fixed": 30}, "rules": []})
        task = asyncio.ensure_future(slow.complete(ask("go")))
        await asyncio.sleep(0.05)
        task.cancel()
        began = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - began < 1

    asyncio.run(run())


def test_a_script_mapping_names_what_is_wrong() -> None:
    with pytest.raises(ScriptError, match=r"s: a script is .* unknown keys \['rule'\]"):
        ScriptedModel.from_document({"rule": []}, source="s")
    with pytest.raises(ScriptError, match=r"s: latency.fixed"):
        ScriptedModel.from_document({"latency": {"fixed": "x"}, "rules": []}, source="s")
    with pytest.raises(ScriptError, match=r"s: rules\[0\]: a rule needs reply or call"):
        ScriptedModel.from_document({"rules": [{"when": "x"}]}, source="s")
