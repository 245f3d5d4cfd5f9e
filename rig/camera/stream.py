"""The scope's view to the consoles, over the rig's MQTT broker, from the camera process.

A console may run on another machine than the daemon (docs/console.md, "The video"). The view
goes where the rest of the rig's API goes: through the broker, which already has each person's
login, the ACL (only rig.api.roles.VIDEO_ROLES may read `rig/<id>/video/view`) and TLS. The
rig opens no port of its own, and nothing in the retained state tells anyone where video is.

- Only while someone watches: a console publishes on `rig/<id>/video/lease` every second; this
  process streams for LEASE_S after the last one (nobody watching costs nothing).
- One JPEG per new view, encoded once whoever watches (the broker fans it out), QoS 0, never
  queued: while the last frame is still being written to the broker's socket the next view is
  skipped, so a slow link loses frames, not time.
- This process logs in with a login of its own, a `rigcam` account (rig.api.roles: it may read
  the leases and publish the view, nothing else; the daemon's login could write the rig's state),
  with its own client id; the password comes in the environment, PASSWORD_ENV, never on the
  command line. It is a separate connection: the daemon's own API never carries a frame, and
  never waits for one.

A message is `pack_frame`: a 2-byte big-endian header length, a JSON header (the frame's
number, its capture stamp on this host's CLOCK_MONOTONIC and in wall-clock ms, the camera's
video timeout, the wall-clock ms it was handed to the broker connection), then the JPEG. The console's server forwards it unchanged to its page.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from drivers.transport.mqtt import KEEPALIVE_S, MAX_PACKET_BYTES, unguessable_client_id
from rig.api.topics import RigTopics
from rig.camera.frames import Frame
from rig.camera.view import LiveView

log = logging.getLogger(__name__)

PASSWORD_ENV = "RIG_VIDEO_BROKER_PASSWORD"
VIDEO_JPEG_QUALITY = 80
LEASE_S = 3.0
"""How long the stream runs after a console's last lease (they renew every LEASE_RENEW_S)."""
LEASE_RENEW_S = 1.0
MAX_FRAME_BYTES = MAX_PACKET_BYTES - 4096
"""The broker disconnects a client whose packet is larger than MAX_PACKET_BYTES; a frame that
would be (the raw 1080p view before the pipeline is calibrated) is sent at half the size."""
STALE_SEND_S = 1.0
"""A frame still not written after this long (the connection dropped under it) no longer
holds the next one back."""


@dataclass(frozen=True)
class VideoBroker:
    """Where the camera process publishes the view: the daemon's broker, the camera's own user."""

    host: str
    port: int
    rig_id: str
    username: str | None = None
    tls_ca_file: str | None = None
    password: str | None = field(default=None, repr=False)
    """Not in `as_argument()`: handed over in the environment (PASSWORD_ENV)."""

    def as_argument(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if k != "password"})

    def environment(self) -> dict[str, str]:
        return {} if self.password is None else {PASSWORD_ENV: self.password}

    @classmethod
    def from_argument(cls, text: str) -> VideoBroker:
        return cls(**json.loads(text), password=os.environ.get(PASSWORD_ENV))


def pack_frame(header: dict[str, Any], jpeg: bytes) -> bytes:
    head = json.dumps(header, separators=(",", ":")).encode()
    return len(head).to_bytes(2, "big") + head + jpeg


def unpack_frame(data: bytes) -> tuple[dict[str, Any], bytes]:
    """The header and the JPEG of a `pack_frame` message (raises ValueError if it is not one)."""
    if len(data) < 2:
        raise ValueError(f"a video message of {len(data)} bytes: expected a header")
    size = int.from_bytes(data[:2], "big")
    header = json.loads(data[2 : 2 + size])
    if not isinstance(header, dict):
        raise ValueError("a video message's header is not a JSON object")
    return header, data[2 + size :]


def encode_view(image: Frame) -> bytes:
    """The view as a JPEG under MAX_FRAME_BYTES (halved until it fits)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, VIDEO_JPEG_QUALITY]
    while True:
        ok, jpeg = cv2.imencode(".jpg", image, params)
        if not ok:
            raise ValueError(f"JPEG encoding failed for a {image.shape} view")
        if len(jpeg) <= MAX_FRAME_BYTES or min(image.shape[:2]) < 16:
            return bytes(jpeg.tobytes())
        height, width = image.shape[:2]
        image = cv2.resize(image, (width // 2, height // 2), interpolation=cv2.INTER_AREA).astype(
            image.dtype, copy=False
        )


class VideoStream:
    """The publishing thread and its broker connection (paho's own network thread)."""

    def __init__(
        self, broker: VideoBroker, view: LiveView, stopping: threading.Event, timeout_ms: int
    ) -> None:
        self._topics = RigTopics(broker.rig_id)
        self._view = view
        self._stopping = stopping
        self._timeout_ms = timeout_ms
        self._lease_until = 0.0
        self.frames_sent = 0
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=unguessable_client_id(f"rigcam-{broker.rig_id}"),
            protocol=paho.MQTTv5,
        )
        if broker.username is not None:
            client.username_pw_set(broker.username, broker.password)
        if broker.tls_ca_file is not None:
            client.tls_set(ca_certs=broker.tls_ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.reconnect_delay_set(min_delay=1, max_delay=2)
        client.on_connect = self._on_connect
        client.on_message = self._on_lease
        self._client = client
        client.connect_async(broker.host, broker.port, keepalive=KEEPALIVE_S)
        client.loop_start()
        self.thread = threading.Thread(target=self._run, name="camera video", daemon=True)
        self.thread.start()

    def _on_connect(self, client: paho.Client, *args: Any) -> None:
        client.subscribe(self._topics.video_lease, qos=0)

    def _on_lease(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self._lease_until = time.monotonic() + LEASE_S
        with self._view.new_view:
            self._view.new_view.notify_all()

    def _run(self) -> None:
        view, seen = self._view, 0
        sending: paho.MQTTMessageInfo | None = None
        sent_at = 0.0
        while not self._stopping.is_set():
            with view.new_view:
                view.new_view.wait(0.5)
            if time.monotonic() > self._lease_until:
                continue  # nobody watching
            got = view.latest
            if got is None or got.info.number == seen:
                continue
            if (
                sending is not None
                and sending.rc == paho.MQTT_ERR_SUCCESS
                and not sending.is_published()
                and time.monotonic() - sent_at < STALE_SEND_S
            ):
                continue  # the last frame is still on its way: this one is skipped, not queued
            seen = got.info.number
            jpeg = encode_view(got.image)
            header = {
                "n": got.info.number,
                "t_ns": got.info.t_ns,
                "wall_ms": (time.time_ns() - (time.monotonic_ns() - got.info.t_ns)) / 1e6,
                "timeout_ms": self._timeout_ms,
                "sent_ms": time.time_ns() / 1e6,
            }
            sending = self._client.publish(self._topics.video, pack_frame(header, jpeg), qos=0)
            sent_at = time.monotonic()
            self.frames_sent += 1

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        self.thread.join(timeout=2.0)
