"""What the Strimzi stand-in writes, checked without a cluster."""

from __future__ import annotations

import pytest

from tests.standins.strimzi_state import CLUSTER_LABEL, TopicRefused, topic_plan, user_secret

pytestmark = pytest.mark.unit


def test_a_topic_plan_caps_replicas_writes_config_as_text_and_never_shrinks() -> None:
    assert topic_plan("t", {"partitions": 3, "replicas": 3}, 1, None).replicas == 1
    assert topic_plan("t", {"config": {"compact": True}}, 1, None).config == {"compact": "true"}
    assert topic_plan("t", {"topicName": "orders"}, 1, None).name == "orders"
    with pytest.raises(TopicRefused, match="Decreasing partitions") as refused:
        topic_plan("t", {"partitions": 1}, 1, 2)
    assert refused.value.reason == "NotSupported"


def test_a_users_secret_is_the_one_strimzi_writes() -> None:
    secret = user_secret("u", "kafka", "chorus", "pw", {"name": "u", "uid": "1"})
    assert secret["metadata"]["name"] == "u"
    assert secret["metadata"]["labels"][CLUSTER_LABEL] == "chorus"
    assert set(secret["data"]) == {"password", "sasl.jaas.config"}
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "1"
