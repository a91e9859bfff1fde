"""The store of what the watches and the operator's own writes showed."""

from __future__ import annotations

from typing import Any

import pytest
from chorus_operator.cache import Expiring, Store


def topic(name: str, version: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "kafka", "resourceVersion": version}, **spec}


API, KIND = "kafka.strimzi.io/v1", "KafkaTopic"


@pytest.mark.unit
def test_a_body_replaces_only_an_older_one() -> None:
    store = Store()
    assert store.put(API, KIND, topic("t", "10", spec={"partitions": 1}))
    # A watch event older than the operator's own write (it was in flight) loses.
    assert not store.put(API, KIND, topic("t", "9", spec={"partitions": 9}))
    assert not store.put(API, KIND, topic("t", "10"))  # the echo of the same write
    assert (store.get(API, KIND, "kafka", "t") or {})["spec"] == {"partitions": 1}
    assert store.put(API, KIND, topic("t", "11", spec={"partitions": 2}))
    assert (store.get(API, KIND, "kafka", "t") or {})["kind"] == KIND
    assert store.get(API, KIND, "other", "t") is None


@pytest.mark.unit
def test_keep_copies_only_a_body_that_is_stored() -> None:
    store, kept = Store(), []

    def keep(body: Any) -> dict[str, Any]:
        kept.append(body["metadata"]["resourceVersion"])
        return {**body, "copied": True}

    assert store.put(API, KIND, topic("t", "10"), keep=keep)
    assert not store.put(API, KIND, topic("t", "10"), keep=keep)  # known: no copy made
    assert kept == ["10"]
    assert (store.get(API, KIND, "kafka", "t") or {})["copied"] is True


@pytest.mark.unit
def test_a_deleted_object_is_not_revived_by_an_older_event() -> None:
    store = Store()
    store.put(API, KIND, topic("t", "5"))
    store.forget(API, KIND, topic("t", "6"))
    assert store.get(API, KIND, "kafka", "t") is None
    assert not store.put(API, KIND, topic("t", "5"))
    assert store.put(API, KIND, topic("t", "7"))  # made again
    assert store.names(API, KIND, "kafka") == ["t"]


@pytest.mark.unit
def test_expiring_values_are_fetched_again_after_their_ttl() -> None:
    now = [0.0]
    cache: Expiring[bool] = Expiring(10.0, clock=lambda: now[0])
    assert cache.get("keda") == (False, None)
    cache.put("keda", True)
    now[0] = 9.0
    assert cache.get("keda") == (True, True)
    now[0] = 10.5
    assert cache.get("keda") == (False, None)


@pytest.mark.unit
def test_newer_tells_beforehand_what_put_would_do() -> None:
    store = Store()
    assert store.newer(API, KIND, topic("t", "10"))
    store.put(API, KIND, topic("t", "10"))
    assert not store.newer(API, KIND, topic("t", "10"))  # an echo: no copy needed
    assert not store.newer(API, KIND, topic("t", "9"))
    assert store.newer(API, KIND, topic("t", "11"))
    store.forget(API, KIND, topic("t", "12"))
    assert not store.newer(API, KIND, topic("t", "12"))
    assert store.newer(API, KIND, topic("t", "13"))
