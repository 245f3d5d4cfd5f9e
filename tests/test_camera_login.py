"""The camera process's own broker login, against a real Mosquitto with the ACL and the
credentials `rig sim` generates (rig.api.roles, rig.broker).

The camera process decodes a network camera's stream: its login may read the consoles' video
leases and publish the view, and nothing else. Whether a publish got through is seen by a
subscriber allowed to read that topic; an allowed publish sent after the refused ones marks
when the broker has handled them (it handles one client's messages in order), and the refused
ones get SETTLE_S more to show up anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from rig.api.roles import Role, ServiceUser, broker_acl, new_credentials
from rig.api.topics import RigTopics
from rig.broker import PrivateBroker

pytestmark = pytest.mark.hazard("H21")

TOPICS = RigTopics("t-1")
SETTLE_S = 0.3


class Inbox:
    """A logged-in client and every message it has received so far."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.messages: list[tuple[str, bytes]] = []
        self._arrived = asyncio.Condition()

    async def collect(self) -> None:
        async for message in self.client.messages:
            assert isinstance(message.payload, bytes)
            async with self._arrived:
                self.messages.append((str(message.topic), message.payload))
                self._arrived.notify_all()

    async def wait_for(self, topic: str) -> None:
        async with asyncio.timeout(5), self._arrived:
            await self._arrived.wait_for(lambda: any(got == topic for got, _ in self.messages))


@contextlib.asynccontextmanager
async def rig_broker(tmp_path: Path) -> AsyncIterator[dict[str, Inbox]]:
    """A broker with the generated ACL and a client logged in as every service and role."""
    credentials = new_credentials()
    broker = PrivateBroker(tmp_path / "broker", credentials=credentials, acl=broker_acl())
    async with broker, contextlib.AsyncExitStack() as stack:
        inboxes: dict[str, Inbox] = {}
        for user in (*ServiceUser, *Role):
            client = aiomqtt.Client(
                broker.host,
                broker.port,
                username=user,
                password=credentials[user],
                protocol=aiomqtt.ProtocolVersion.V5,
            )
            inboxes[user] = Inbox(await stack.enter_async_context(client))
        collectors = [asyncio.create_task(inbox.collect()) for inbox in inboxes.values()]
        try:
            yield inboxes
        finally:
            for collector in collectors:
                collector.cancel()
            await asyncio.gather(*collectors, return_exceptions=True)


async def test_the_camera_login_reads_leases_and_publishes_the_view_only(tmp_path: Path) -> None:
    async with rig_broker(tmp_path) as inbox:
        camera = inbox[ServiceUser.CAMERA].client
        await camera.subscribe(TOPICS.video_lease, qos=1)
        await inbox[Role.ENGINEER].client.subscribe(TOPICS.video, qos=1)
        await inbox[Role.ENGINEER].client.subscribe(TOPICS.state, qos=1)
        await inbox[ServiceUser.DAEMON].client.subscribe(TOPICS.commands_for("+"), qos=1)

        # The camera reads a console's lease.
        await inbox[Role.ENGINEER].client.publish(TOPICS.video_lease, b"1", qos=1)
        await inbox[ServiceUser.CAMERA].wait_for(TOPICS.video_lease)

        # It can neither forge the rig's state (retained or not) nor send a command.
        await camera.publish(TOPICS.state, b'{"online": true, "state": "ready"}', qos=1)
        await camera.publish(TOPICS.state, b'{"state": "ready"}', qos=1, retain=True)
        for role in (Role.ENGINEER, Role.SURGEON):
            await camera.publish(TOPICS.commands_for(role), b'{"op": "estop"}', qos=1)
        # It can publish the view.
        await camera.publish(TOPICS.video, b"frame", qos=1)
        await inbox[Role.ENGINEER].wait_for(TOPICS.video)
        await asyncio.sleep(SETTLE_S)
        assert inbox[Role.ENGINEER].messages == [(TOPICS.video, b"frame")]
        assert inbox[ServiceUser.DAEMON].messages == []
        # A retained state would reach whoever subscribes later: none was kept.
        await inbox[Role.OBSERVER].client.subscribe(TOPICS.state, qos=1)
        await asyncio.sleep(SETTLE_S)
        assert inbox[Role.OBSERVER].messages == []


async def test_the_daemon_login_no_longer_publishes_the_view(tmp_path: Path) -> None:
    async with rig_broker(tmp_path) as inbox:
        daemon = inbox[ServiceUser.DAEMON].client
        await inbox[Role.ENGINEER].client.subscribe(TOPICS.video, qos=1)
        await inbox[Role.ENGINEER].client.subscribe(TOPICS.state, qos=1)
        await daemon.publish(TOPICS.video, b"frame", qos=1)
        await daemon.publish(TOPICS.state, b"{}", qos=1)
        await inbox[Role.ENGINEER].wait_for(TOPICS.state)
        await asyncio.sleep(SETTLE_S)
        assert inbox[Role.ENGINEER].messages == [(TOPICS.state, b"{}")]
