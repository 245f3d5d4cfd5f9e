"""The [broker] section: the MQTT broker the daemon and its clients use."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Final

from pydantic import (
    Field,
    model_validator,
)

from rig.config.base import Section
from rig.config.bounds import (
    Bound,
    field_default,
    register_bounds,
)
from rig.config.errors import Problem, cross_check

register_bounds(
    Bound("broker.port", "", 1883, "TCP port range; 1883 is the IANA MQTT port", 1, 65535),
)


_LOOSE_PATH: Final[Any] = Field(default=None, strict=False)  # TOML gives paths as strings


class BrokerConfig(Section):
    """The MQTT broker the daemon and its clients use."""

    _section: ClassVar[str] = "broker"

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = field_default("broker.port")
    private: bool = False
    """True: the daemon's launcher starts a private Mosquitto on a free loopback port."""
    username: str | None = Field(default=None, min_length=1)
    password_file: Path | None = _LOOSE_PATH
    tls_ca_file: Path | None = _LOOSE_PATH
    camera_username: str | None = Field(default=None, min_length=1)
    """The camera process's own login (rig/camera/stream.py), a `rigcam` account: it may only
    read the consoles' video leases and publish the view. Unset on a broker with logins: no video
    goes to consoles (the camera process never borrows the daemon's login)."""
    camera_password_file: Path | None = _LOOSE_PATH

    @model_validator(mode="after")
    def _consistent(self) -> BrokerConfig:
        problems: list[Problem] = []
        if self.password_file is not None and self.username is None:
            problems.append(
                Problem(
                    "broker.password_file",
                    self.password_file,
                    "a password file needs broker.username",
                )
            )
        if self.camera_password_file is not None and self.camera_username is None:
            problems.append(
                Problem(
                    "broker.camera_password_file",
                    self.camera_password_file,
                    "a password file needs broker.camera_username",
                )
            )
        if self.private:
            for name in (
                "username",
                "password_file",
                "tls_ca_file",
                "camera_username",
                "camera_password_file",
            ):
                value = getattr(self, name)
                if value is not None:
                    problems.append(
                        Problem(
                            f"broker.{name}",
                            value,
                            "not used with private = true (the private broker is loopback-only "
                            "and anonymous): remove it or set private = false",
                        )
                    )
        cross_check(problems)
        return self
