"""Attacks on the API by its own logged-in users (issue 6, part 4), against a real Mosquitto with
the ACL and the credentials `rig sim` generates (rig.api.roles, rig.broker).

Each attacker here is a raw MQTT v5 client, not our MqttEndpoint: a hostile user writes their
own client and sets whatever client id, response topic, retain flag and size they like.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from drivers.sim.rig_sim import sim_command_topic
from drivers.transport.mqtt import (
    MAX_PACKET_BYTES,
    MAX_REQUEST_BYTES,
    JsonObject,
    MqttEndpoint,
    Request,
)
from rig.api.roles import Role, ServiceUser
from tests.system.harness import RigUnderTest

pytestmark = [pytest.mark.system, pytest.mark.timeout(90), pytest.mark.hazard("H21")]


@contextlib.asynccontextmanager
async def raw_client(
    rig: RigUnderTest, user: str, identifier: str | None = None
) -> AsyncIterator[aiomqtt.Client]:
    username, password = rig.rig.credentials_of(user)
    async with aiomqtt.Client(
        rig.rig.broker_host,
        rig.rig.broker_port,
        username=username,
        password=password,
        identifier=identifier,
        protocol=aiomqtt.ProtocolVersion.V5,
    ) as client:
        yield client


def request_properties(response_topic: str | None) -> Properties:
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    if response_topic is not None:
        properties.ResponseTopic = response_topic
    properties.CorrelationData = b"attack"
    return properties


def daemon_alive(rig: RigUnderTest) -> bool:
    return rig.rig.daemon is not None and rig.rig.daemon.returncode is None


async def daemon_client_id(rig: RigUnderTest, other_than: str | None = None) -> str:
    """What the daemon logged as its broker client id (its log is private to the rig's host)."""
    async with asyncio.timeout(10):
        while True:
            text = (rig.rig.run_dir / "daemon.log").read_text()
            found = re.findall(r"broker client id (rigd-[0-9A-Za-z._-]+)", text)
            if found and found[-1] != other_than:
                return str(found[-1])
            await asyncio.sleep(0.1)


# -- session takeover ---------------------------------------------------------------------------


async def test_a_user_claiming_the_service_client_ids_takes_no_session_over(
    rig: RigUnderTest,
) -> None:
    rig_id = rig.rig.profile.rig_id
    for identifier in (f"rigd-{rig_id}", f"sim-{rig_id}", "rigd", "sim"):
        async with raw_client(rig, Role.OBSERVER, identifier):
            await asyncio.sleep(0.5)
    assert daemon_alive(rig)
    assert (await rig.status())["state"] == "ready"
    assert "pump" in await rig.sim("state")


async def test_a_kicked_daemon_reconnects_and_serves_again(rig: RigUnderTest) -> None:
    """Should someone learn the daemon's id anyway, its session taken over is a lost
    connection like any other: it reconnects (with a fresh id)."""
    first_id = await daemon_client_id(rig)
    with contextlib.suppress(aiomqtt.MqttError):
        async with raw_client(rig, Role.OBSERVER, first_id):
            await asyncio.sleep(1.0)
    await daemon_client_id(rig, other_than=first_id)
    state = await rig.wait_until(lambda s: s["online"], 10.0)
    assert daemon_alive(rig) and state["state"] == "ready" and state["fault"] is None


# -- reply steering -----------------------------------------------------------------------------

STEERED_TOPICS = [
    "rig/{id}/state",
    "rig/{id}/events",
    "rig/{id}/telemetry/fluid",
    "rig/{id}/cmd/engineer",
    "rig/{id}/cmd/surgeon",
    "reply/#",
    "reply/+",
    "reply/a/b",
    "reply/",
    "#",
    "reply/" + "x" * 5000,
]


async def test_replies_go_only_to_a_reply_namespace_and_steered_requests_do_not_run(
    rig: RigUnderTest,
) -> None:
    await rig.prime()
    rig_id = rig.rig.profile.rig_id
    seen: list[tuple[str, Any]] = []
    async with raw_client(rig, Role.OBSERVER) as observer, raw_client(rig, Role.SURGEON) as surgeon:
        await observer.subscribe(f"rig/{rig_id}/#")

        async def watch() -> None:
            async for message in observer.messages:
                if str(message.topic).endswith("telemetry/fluid"):
                    continue
                seen.append((str(message.topic), json.loads(bytes(message.payload))))

        watcher = asyncio.create_task(watch())
        try:
            for topic in STEERED_TOPICS:
                await surgeon.publish(
                    f"rig/{rig_id}/cmd/surgeon",
                    b'{"op": "fluid.irrigate", "flow_ml_min": 1.0}',
                    qos=1,
                    properties=request_properties(topic.format(id=rig_id)),
                )
            await asyncio.sleep(1.0)
        finally:
            watcher.cancel()
    replies = [(topic, body) for topic, body in seen if isinstance(body, dict) and "ok" in body]
    assert replies == [], "a reply reached a topic other than a reply namespace"
    refused = [b for t, b in seen if t.endswith("/events") and b["kind"] == "request_refused"]
    assert len(refused) == len(STEERED_TOPICS)
    assert {b["code"] for b in refused} == {"bad_response_topic"}
    assert all(len(b["reason"]) < 400 for b in refused)
    assert not (await rig.sim("state"))["pump"]["running"]
    assert daemon_alive(rig) and (await rig.status())["mode"] == "stopped"


async def test_the_daemons_login_cannot_publish_a_command(rig: RigUnderTest) -> None:
    """The daemon's own write rights stop at its outputs and the reply namespace: even with its
    password, nothing published on a command topic reaches the daemon."""
    async with raw_client(rig, ServiceUser.DAEMON) as daemon_login:
        for role in (Role.ENGINEER, Role.SURGEON):
            await daemon_login.publish(
                rig.topics.commands_for(role), b'{"op": "estop", "source": "steered"}', qos=1
            )
    await asyncio.sleep(0.5)
    assert (await rig.status())["state"] == "ready"


# -- oversized messages -------------------------------------------------------------------------


async def test_an_oversized_request_is_refused_unread_with_a_bounded_reply(
    rig: RigUnderTest,
) -> None:
    value = "x" * 100_000
    payload = json.dumps({"op": "fluid.irrigate", "flow_ml_min": value}).encode()
    assert MAX_REQUEST_BYTES < len(payload) < MAX_PACKET_BYTES
    async with rig.endpoint(Role.SURGEON) as surgeon:
        reply = await surgeon.request(rig.topics.commands_for(Role.SURGEON), payload)
    assert reply["ok"] is False and reply["error"]["code"] == "too_large"
    assert len(json.dumps(reply)) < 1000
    assert str(len(payload)) in reply["error"]["message"]


async def test_a_megabyte_message_never_reaches_the_daemon_and_fluid_runs_on(
    rig: RigUnderTest,
) -> None:
    await rig.irrigate_steadily(1.0)
    for size in (3_200_000, 8_000_000):
        payload = b'{"op": "status", "pad": "' + b"x" * size + b'"}'
        cut_off = False
        try:
            async with raw_client(rig, Role.SURGEON) as surgeon:
                await surgeon.publish(
                    rig.topics.commands_for(Role.SURGEON),
                    payload,
                    qos=1,
                    properties=request_properties("reply/attacker"),
                )
                await asyncio.sleep(0.5)
        except aiomqtt.MqttError:
            cut_off = True
        assert cut_off, f"the broker took a {size}-byte message"
    await asyncio.sleep(0.5)
    state = await rig.status()
    assert state["fault"] is None and state["mode"] == "irrigating", state
    assert (await rig.sim("state"))["pump"]["running"]
    assert daemon_alive(rig)


# -- retained commands --------------------------------------------------------------------------


async def test_a_retained_command_is_refused_and_never_replayed_to_a_new_responder(
    rig: RigUnderTest,
) -> None:
    topic = rig.topics.commands_for(Role.ENGINEER)
    async with raw_client(rig, Role.ENGINEER) as engineer:
        await engineer.publish(topic, b'{"op": "estop", "source": "stored"}', qos=1, retain=True)
    event = await rig.next_event(lambda e: e.get("kind") == "request_refused")
    assert event["code"] == "retained" and event["role"] == "engineer"
    assert (await rig.status())["state"] == "ready"
    # Mosquitto cannot refuse retain per topic: the broker holds the command ...
    async with raw_client(rig, ServiceUser.DAEMON) as plain:
        await plain.subscribe(topic)
        async with asyncio.timeout(3):
            stored = await anext(aiter(plain.messages))
        assert stored.retain and b"estop" in bytes(stored.payload)
    # ... and a responder that subscribes later (a restarted daemon) is never handed it.
    heard: list[object] = []

    async def handler(request: Request) -> JsonObject:
        heard.append(request)
        return {"ok": True}

    username, password = rig.rig.credentials_of(ServiceUser.DAEMON)
    async with MqttEndpoint(
        rig.rig.broker_host, rig.rig.broker_port, username=username, password=password
    ) as responder:
        await responder.serve(topic, handler, on_refused=lambda r, e: heard.append(e))
        await asyncio.sleep(1.0)
    assert heard == []


async def test_the_simulator_refuses_a_retained_control_request(rig: RigUnderTest) -> None:
    topic = sim_command_topic(rig.rig.profile.rig_id)
    async with raw_client(rig, Role.ENGINEER) as engineer:
        await engineer.publish(
            topic,
            b'{"op": "estop", "pressed": true}',
            qos=1,
            retain=True,
            properties=request_properties("reply/attacker-sim"),
        )
    await asyncio.sleep(0.5)
    assert (await rig.status())["state"] == "ready"


# -- audit --------------------------------------------------------------------------------------


async def test_every_command_is_audited_with_role_client_and_result(rig: RigUnderTest) -> None:
    await rig.prime()
    async with rig.endpoint(Role.SURGEON) as surgeon:
        topic = rig.topics.commands_for(Role.SURGEON)
        rig.drain_events()
        assert (await surgeon.request(topic, {"op": "fluid.irrigate", "flow_ml_min": 1.0}))["ok"]
        audit = await rig.next_event(lambda e: e.get("kind") == "command")
        assert audit["op"] == "fluid.irrigate" and audit["role"] == "surgeon"
        assert audit["client"] == surgeon.client_id and audit["ok"] is True
        denied = await surgeon.request(topic, {"op": "selftest.run"})
        assert denied["error"]["code"] == "denied"
        audit = await rig.next_event(lambda e: e.get("kind") == "command")
        assert audit["op"] == "selftest.run" and audit["ok"] is False
        assert audit["error"] == "denied" and audit["client"] == surgeon.client_id
        # Without a response topic nobody hears the outcome: refused, but a stop still runs.
        await surgeon.publish(topic, {"op": "fluid.irrigate", "flow_ml_min": 2.0})
        audit = await rig.next_event(lambda e: e.get("kind") == "command")
        assert audit["error"] == "no_response_topic" and audit["client"] is None
        await surgeon.publish(topic, {"op": "fluid.stop"})
        audit = await rig.next_event(lambda e: e.get("kind") == "command")
        assert audit["op"] == "fluid.stop" and audit["ok"] is True and audit["client"] is None
    await rig.wait_sim(lambda s: not s["pump"]["running"], 2.0)
    log_lines = (rig.rig.run_dir / "daemon.log").read_text().splitlines()
    logged = [json.loads(line) for line in log_lines if '"kind": "command"' in line]
    assert any(
        entry["event"]["client"] == surgeon.client_id and entry["event"]["role"] == "surgeon"
        for entry in logged
    )
