from __future__ import annotations

import re

import pytest
from chorus_operator.model.labels import child_name, dns_name

DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


@pytest.mark.unit
def test_a_dns_safe_topic_name_is_kept() -> None:
    assert dns_name("chorus.trading.risk.inbox") == "chorus.trading.risk.inbox"


@pytest.mark.unit
@pytest.mark.parametrize("topic", ["orders_v2", "Trading.Ticks", "_x", "a..b", "-a-", "x" * 249])
def test_other_topic_names_become_valid_and_distinct(topic: str) -> None:
    name = dns_name(topic)
    assert DNS_SUBDOMAIN.fullmatch(name) and len(name) <= 253
    assert name != dns_name(topic.swapcase())


@pytest.mark.unit
def test_names_differing_only_in_case_or_underscore_do_not_collide() -> None:
    assert len({dns_name("orders_v2"), dns_name("orders-v2"), dns_name("Orders-v2")}) == 3


@pytest.mark.unit
def test_child_names_are_bounded_and_distinct() -> None:
    assert child_name("risk", "signals", max_length=45) == "risk-signals"
    long_a = child_name("a" * 40, "b" * 40, max_length=45)
    long_b = child_name("a" * 40, "c" * 40, max_length=45)
    assert len(long_a) <= 45 and long_a != long_b
