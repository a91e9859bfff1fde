"""The desired state of an Agent: every child, in apply order, from typed inputs.

:func:`build_agent` first checks everything (tools, streams, secrets) and only then
builds, so an error never leaves half the children made.
"""

from __future__ import annotations

import hashlib
import json

from chorus_api.runtime import (
    AgentIdentity,
    RuntimeConfig,
    RuntimeDelivery,
    RuntimeHttp,
    RuntimeModel,
    RuntimeTool,
    RuntimeTopics,
    runtime_config_yaml,
)
from chorus_api.streams import ResolvedStream
from chorus_api.topics import audit_topic, consumer_group, inbox_topic, own_topics

from chorus_operator.model import access, kafka, network, scaling, streams, workload
from chorus_operator.model.card import agent_card
from chorus_operator.model.checks import agent_key, check_agent
from chorus_operator.model.credentials import SECRETS_DIR, kafka_credentials, secret_file_volume
from chorus_operator.model.errors import SpecInvalid
from chorus_operator.model.inputs import AgentInputs
from chorus_operator.model.labels import (
    agent_labels,
    agent_selector,
    owner_reference,
)
from chorus_operator.model.plan import AgentPlan, Manifest

HTTP_PORT = 8080
KIND_ORDER = (
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "KafkaUser",
    "KafkaTopic",
    "ConfigMap",
    "Deployment",
    "Service",
    "FlinkDeployment",
    "HorizontalPodAutoscaler",
    "ScaledObject",
    "NetworkPolicy",
)


def config_hash(config_map: Manifest) -> str:
    """The hash of a ConfigMap's data: changes exactly when the mounted files change."""
    text = json.dumps(config_map["data"], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_agent(inputs: AgentInputs) -> AgentPlan:
    """Every child of ``inputs.agent``; raises SpecInvalid / DependencyNotReady first."""
    agent, settings = inputs.agent, inputs.settings
    name = agent.metadata.name
    namespace = agent.metadata.namespace
    if namespace is None:
        raise SpecInvalid(
            "Ready", "NamespaceMissing", f"agent {name}: metadata.namespace is not set"
        )
    who = agent_key(agent)
    spec = agent.spec
    tools = check_agent(inputs)
    resolved = [(s, streams.resolve(s, who=who)) for s in spec.streams]

    remote = settings.kafka_namespace != namespace
    owner = owner_reference("Agent", name, inputs.uid)
    kafka_owner = None if remote else owner
    local = agent_labels(namespace, name, "agent", remote=False)
    selector = agent_selector(name)
    authenticated = settings.kafka_authentication is not None

    # --- Kafka access ------------------------------------------------------------------
    user = access.agent_user_name(namespace, name)
    connection, credentials = kafka_credentials(settings, user=user, remote=remote)
    api_access = bool(credentials.api_secrets)
    children: list[Manifest] = [
        workload.service_account(name, namespace, local, owner, api_access=api_access)
    ]
    if api_access:
        role, role_binding = access.secret_reader_rbac(
            name=f"chorus-agent.{namespace}.{name}",
            kafka_namespace=settings.kafka_namespace,
            secrets=credentials.api_secrets,
            service_account=name,
            service_account_namespace=namespace,
            labels=agent_labels(namespace, name, "access", remote=True),
        )
        children += [role, role_binding]
    if authenticated:
        acls = access.agent_acls(
            namespace,
            name,
            subscribe=[s.topic for s in spec.subscribe],
            publish=[p.topic for p in spec.publish],
            transactional=spec.delivery.guarantee.value == "exactly-once",
        )
        children.append(
            access.kafka_user(
                name=user,
                namespace=settings.kafka_namespace,
                labels=agent_labels(namespace, name, "access", remote=remote),
                authentication=settings.kafka_authentication,
                acls=acls,
                owner=kafka_owner,
            )
        )
        for stream, rs in resolved:
            children.append(_stream_user(inputs, stream.name, rs, remote=remote))

    # --- topics -------------------------------------------------------------------------
    outputs = sorted({t for _, rs in resolved for t in rs.outputs})
    for topic in kafka.shared_topics(namespace, settings.platform_topic_partitions):
        kind = "agent-cards" if topic.name.endswith("agent-cards") else "audit"
        children.append(
            kafka.kafka_topic(topic, settings, labels=kafka.shared_topic_labels(kind), owner=None)
        )
    topic_labels = agent_labels(namespace, name, "topic", remote=remote)
    for topic in kafka.agent_topics(namespace, name, partitions=settings.platform_topic_partitions):
        children.append(kafka.kafka_topic(topic, settings, labels=topic_labels, owner=kafka_owner))
    for topic in kafka.output_topics(
        publish=spec.publish, stream_outputs=outputs, partitions=settings.platform_topic_partitions
    ):
        children.append(
            kafka.kafka_topic(
                topic, settings, labels=kafka.shared_topic_labels(kafka.OUTPUT_TOPIC), owner=None
            )
        )

    # --- workload -----------------------------------------------------------------------
    volumes = list(credentials.volumes)
    mounts = list(credentials.mounts)
    runtime_model = None
    peers: list[network.Peer] = []
    if spec.model is not None:
        key_file = None
        if spec.model.api_key_secret_ref is not None:
            ref = spec.model.api_key_secret_ref
            volume, mount, key_file = secret_file_volume(
                "model-api-key", ref.name, ref.key, f"{SECRETS_DIR}/model"
            )
            volumes.append(volume)
            mounts.append(mount)
        script_file = None
        if spec.model.script_from is not None:
            source = spec.model.script_from.config_map_key_ref
            volume, mount, script_file = workload.config_map_file_volume(
                "model-script", source.name, source.key, workload.MODEL_SCRIPT_DIR
            )
            volumes.append(volume)
            mounts.append(mount)
        runtime_model = RuntimeModel(
            provider=spec.model.provider,
            name=spec.model.name,
            endpoint=spec.model.endpoint,
            api_key_file=key_file,
            api_version=spec.model.api_version,
            price=spec.model.price,
            script=spec.model.script,
            script_file=script_file,
        )
        if spec.model.provider.value != "scripted":
            peers.append(network.Peer(network.url_port(spec.model.endpoint or "https://x")))
    runtime_tools = []
    for binding in spec.tools:
        tool = tools[binding.ref]
        token_file = None
        if tool.bearer_token_secret is not None:
            ref = tool.bearer_token_secret
            volume, mount, token_file = secret_file_volume(
                f"tool-{binding.ref}"[:63], ref.name, ref.key, f"{SECRETS_DIR}/tools/{binding.ref}"
            )
            volumes.append(volume)
            mounts.append(mount)
        runtime_tools.append(
            RuntimeTool(
                name=binding.ref,
                url=tool.endpoint,
                allow=binding.allow,
                timeout_seconds=tool.timeout_seconds,
                bearer_token_file=token_file,
            )
        )
        if tool.pod_labels is not None and tool.port is not None:
            peers.append(network.Peer(tool.port, tool.namespace, tool.pod_labels))
        else:
            peers.append(network.Peer(network.url_port(tool.endpoint)))

    topics = own_topics(namespace, name)
    public_url = f"http://{name}.{namespace}.svc:{HTTP_PORT}"
    runtime_config = RuntimeConfig(
        agent=AgentIdentity(namespace=namespace, name=name, description=spec.description),
        kafka=connection,
        topics=RuntimeTopics.model_validate(
            {
                **topics,
                "audit": audit_topic(namespace),
                "subscribe": tuple(s.topic for s in spec.subscribe),
                "publish": tuple(p.topic for p in spec.publish),
            }
        ),
        delivery=RuntimeDelivery.of(spec.delivery),
        handler=spec.handler,
        instructions=spec.instructions,
        model=runtime_model,
        tools=tuple(runtime_tools),
        skills=spec.skills,
        http=RuntimeHttp(port=HTTP_PORT, public_url=public_url),
    )
    card = agent_card(
        namespace=namespace,
        name=name,
        inbox=inbox_topic(namespace, name),
        http_url=public_url,
        description=spec.description,
        skills=spec.skills,
    )
    config_map = workload.config_map(
        name,
        namespace,
        local,
        owner,
        runtime_yaml=runtime_config_yaml(runtime_config),
        card=card,
    )
    digest = config_hash(config_map)
    children.append(config_map)
    children.append(
        workload.deployment(
            name,
            namespace,
            local,
            selector,
            owner,
            image=spec.image or settings.agent_image,
            replicas=None if spec.scaling is not None else 1,
            port=HTTP_PORT,
            config_hash=digest,
            config_map_name=name,
            resources=spec.resources,
            volumes=volumes,
            mounts=mounts,
            env=[],
        )
    )
    children.append(workload.service(name, namespace, local, selector, owner, port=HTTP_PORT))

    # --- streams, scaling, network ---------------------------------------------------------
    for stream, rs in resolved:
        deployment = streams.deployment_name(name, stream.name)
        labels = {
            **agent_labels(namespace, name, "stream", remote=False),
            streams.STREAM_LABEL: stream.name,
        }
        children.append(
            streams.stream_deployment(
                rs,
                settings,
                name=deployment,
                namespace=namespace,
                labels=labels,
                owner=owner,
                kafka_user=access.stream_user_name(namespace, name, stream.name)
                if authenticated
                else None,
                remote=remote,
            )
        )
    if spec.scaling is not None:
        group = consumer_group(namespace, name)
        scale_labels = agent_labels(namespace, name, "autoscaler", remote=False)
        if inputs.keda_available:
            children.append(
                scaling.scaled_object(
                    name,
                    namespace,
                    scale_labels,
                    owner,
                    scaling=spec.scaling,
                    group=group,
                    topics=[topics["inbox"], *(s.topic for s in spec.subscribe)],
                    bootstrap_servers=settings.bootstrap_servers,
                )
            )
        else:
            children.append(
                scaling.horizontal_pod_autoscaler(
                    name, namespace, scale_labels, owner, scaling=spec.scaling, group=group
                )
            )
    children.append(
        network.network_policy(
            name,
            namespace,
            agent_labels(namespace, name, "network", remote=False),
            selector,
            owner,
            settings=settings,
            http_port=HTTP_PORT,
            peers=peers,
            api_access=api_access,
        )
    )
    ordered = tuple(sorted(children, key=_apply_order))
    remote_children = tuple(
        c
        for c in ordered
        if c["metadata"]["namespace"] != namespace
        and "chorus.dev/owner-name" in c["metadata"]["labels"]
    )
    return AgentPlan(
        children=ordered,
        config_hash=digest,
        runtime_config=runtime_config,
        agent_card=card,
        topics={k: topics[k] for k in ("inbox", "replies", "deadLetter")},
        remote_children=remote_children,
    )


def _stream_user(
    inputs: AgentInputs, stream: str, resolved: ResolvedStream, *, remote: bool
) -> Manifest:
    agent, settings = inputs.agent, inputs.settings
    name, namespace = agent.metadata.name, agent.metadata.namespace or ""
    deployment = streams.deployment_name(name, stream)
    labels = {
        **agent_labels(namespace, name, "stream-access", remote=remote),
        streams.STREAM_LABEL: stream,
    }
    return access.kafka_user(
        name=access.stream_user_name(namespace, name, stream),
        namespace=settings.kafka_namespace,
        labels=labels,
        authentication=settings.kafka_authentication,
        acls=access.stream_acls(namespace, deployment, resolved),
        owner=None if remote else owner_reference("Agent", name, inputs.uid),
    )


def _apply_order(child: Manifest) -> tuple[int, str, str]:
    metadata = child["metadata"]
    return (KIND_ORDER.index(child["kind"]), metadata["namespace"], metadata["name"])
