"""`rig users add|remove|list`: the people and services a site broker lets in, and what each may do.

A site's Mosquitto (not `rig sim`'s private one) reads three files kept in one directory:

- `users.json`: user name -> account kind (`surgeon`, `engineer`, `observer`, or a service:
  `rigd` for a daemon, `rigcam` for its camera process, `sim` for a simulator), the list this
  command edits;
- `passwd`: the passwords, hashed by `mosquitto_passwd`;
- `acl`: generated from `users.json` by rig.api.roles.broker_acl, the same generator as the
  simulator's private broker, so a site grants exactly what the tests check.

The broker's configuration names them (`password_file`, `acl_file`, `allow_anonymous false`);
after a change, reload it (`systemctl reload mosquitto`, or SIGHUP).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

from rig.api.roles import ACCOUNTS, Account, broker_acl
from rig.broker import find_mosquitto_passwd

DEFAULT_DIR = Path("/etc/ductoscopy/broker")
USER_NAME = re.compile(r"^[a-z][a-z0-9._-]{0,31}$")
"""No spaces and none of MQTT's wildcards or the ACL's % patterns: a name is one token there."""


class UsersError(Exception):
    pass


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = subparsers.add_parser("users", help="the users of a site broker, and their roles")
    commands = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = commands.add_parser("add", help="add a user (or change its role and password)")
    add.add_argument("name", help="the user name: a-z first, then a-z 0-9 . _ -, up to 32")
    add.add_argument(
        "--role",
        required=True,
        choices=sorted(ACCOUNTS),
        help="what the user may do (docs/api.md); rigd, rigcam and sim are the rig's services",
    )
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from stdin (default: generate one and print it once)",
    )
    remove = commands.add_parser("remove", help="remove a user")
    remove.add_argument("name", help="the user name")
    listing = commands.add_parser("list", help="the users and their roles")
    for sub in (add, remove, listing):
        sub.add_argument(
            "--dir",
            type=Path,
            default=DEFAULT_DIR,
            help=f"the broker's users directory (default {DEFAULT_DIR})",
        )
    add.set_defaults(func=_add)
    remove.set_defaults(func=_remove)
    listing.set_defaults(func=_list)


def _add(args: argparse.Namespace) -> int:
    try:
        if not USER_NAME.fullmatch(args.name):
            raise UsersError(
                f"user name {args.name!r}: expected a-z first, then a-z 0-9 . _ -, up to 32"
            )
        generated = not args.password_stdin
        password = secrets.token_urlsafe(18) if generated else sys.stdin.readline().rstrip("\n")
        if not password:
            raise UsersError("an empty password: give one on stdin, or let one be generated")
        users = _load(args.dir)
        users[args.name] = ACCOUNTS[args.role]
        _set_password(args.dir, args.name, password)
        _save(args.dir, users)
    except (UsersError, OSError) as exc:
        print(f"rig users: {exc}", file=sys.stderr)
        return 1
    print(f"{args.name}: {args.role}")
    if generated:
        print(f"password (shown once): {password}")
    print(f"reload the broker to apply ({args.dir}/passwd, {args.dir}/acl)")
    return 0


def _remove(args: argparse.Namespace) -> int:
    try:
        users = _load(args.dir)
        if users.pop(args.name, None) is None:
            raise UsersError(f"no user {args.name!r} in {args.dir / 'users.json'}")
        _run_passwd(["-D", str(args.dir / "passwd"), args.name])
        _save(args.dir, users)
    except (UsersError, OSError) as exc:
        print(f"rig users: {exc}", file=sys.stderr)
        return 1
    print(f"{args.name} removed; reload the broker to apply")
    return 0


def _list(args: argparse.Namespace) -> int:
    try:
        users = _load(args.dir)
    except (UsersError, OSError) as exc:
        print(f"rig users: {exc}", file=sys.stderr)
        return 1
    for name, account in sorted(users.items()):
        print(f"{name:<32} {account}")
    return 0


def _load(directory: Path) -> dict[str, Account]:
    path = directory / "users.json"
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise UsersError(f"{path}: expected a JSON object of user name -> role")
    users: dict[str, Account] = {}
    for name, kind in data.items():
        if kind not in ACCOUNTS:
            raise UsersError(f"{path}: {name}: role {kind!r}, expected one of {sorted(ACCOUNTS)}")
        users[str(name)] = ACCOUNTS[kind]
    return users


def _save(directory: Path, users: dict[str, Account]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    _write(
        directory / "users.json",
        json.dumps({n: str(a) for n, a in sorted(users.items())}, indent=1),
    )
    _write(directory / "acl", broker_acl(dict(sorted(users.items()))))


def _write(path: Path, text: str) -> None:
    """Replace `path` whole (a broker reloading mid-write never reads half a file), 0600."""
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    partial.replace(path)


def _set_password(directory: Path, name: str, password: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    passwd = directory / "passwd"
    if not passwd.exists():
        passwd.touch(mode=0o600)
    _run_passwd(["-b", str(passwd), name, password])


def _run_passwd(arguments: list[str]) -> None:
    result = subprocess.run(
        [find_mosquitto_passwd(), *arguments], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise UsersError(
            f"mosquitto_passwd failed: {result.stderr.strip() or result.stdout.strip()}"
        )
