"""The rig profile: loading, hard bounds, cross-field checks, port specs, error messages."""

from __future__ import annotations

import copy
import tomllib
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from rig.config import (
    CONFIG_DIR,
    DEFAULT_PROFILE,
    FIELD_BOUNDS,
    MISSING,
    Bound,
    LimitsConfig,
    PathPort,
    ProfileError,
    RigProfile,
    SimPort,
    UsbPort,
    bounds_table_markdown,
    dump_profile_toml,
    format_number,
    load_profile,
    parse_profile,
    validate_profile,
)
from rig.launcher import sim_baudrates

REPO = Path(__file__).resolve().parents[1]
SIM = CONFIG_DIR / "sim.toml"
BENCH = CONFIG_DIR / "bench.example.toml"

MINIMAL = """
rig_id = "t-1"
[devices.pump]
port = { path = "/dev/ttyUSB0" }
[devices.board]
port = { usb = { vid = 0x0403, pid = 0x6001 } }
"""


def sim_data() -> dict[str, Any]:
    """config/sim.toml, with the optional camera (off there: a camera process per rig start
    costs the system tests CPU) so that its fields are checked too."""
    with SIM.open("rb") as f:
        data = tomllib.load(f)
    data["devices"].setdefault("camera", {"port": {"sim": "camera"}})
    return data


def set_path(data: dict[str, Any], dotted: str, value: object) -> dict[str, Any]:
    out = copy.deepcopy(data)
    node = out
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return out


def problems_of(data: dict[str, Any]) -> list[tuple[str, object, str]]:
    with pytest.raises(ProfileError) as info:
        validate_profile(data)
    return [tuple(p) for p in info.value.problems]  # type: ignore[misc]


def only_problem(data: dict[str, Any]) -> tuple[str, object, str]:
    problems = problems_of(data)
    assert len(problems) == 1, problems
    return problems[0]


# --- shipped profiles ------------------------------------------------------------------------


def test_sim_profile_loads_with_private_broker_and_sim_ports() -> None:
    profile = load_profile(SIM)
    assert profile.rig_id == "sim-1"
    assert profile.broker.private is True
    assert profile.devices.pump.port == SimPort(sim="pump")
    assert profile.devices.board.port == SimPort(sim="board")
    assert profile.simulator is not None


def test_default_profile_is_the_sim_profile() -> None:
    assert DEFAULT_PROFILE == REPO / "config" / "sim.toml"
    assert load_profile(DEFAULT_PROFILE).rig_id == "sim-1"


def test_bench_example_loads_with_real_ports_and_tls_broker() -> None:
    profile = load_profile(BENCH)
    assert isinstance(profile.devices.pump.port, PathPort | UsbPort)
    assert isinstance(profile.devices.board.port, UsbPort)
    assert profile.devices.board.port.usb.serial_number
    assert profile.broker.private is False
    assert profile.broker.username
    assert profile.broker.password_file is not None
    assert profile.broker.tls_ca_file is not None
    assert profile.simulator is None


def test_minimal_profile_takes_every_default_from_the_registry() -> None:
    # with each optional device, in its minimal form: its port
    profile = parse_profile(
        MINIMAL
        + "[devices.pedal]\nport = { usb = { vid = 0x05f3, pid = 0x00ff } }\n"
        + "[devices.basket]\nport = { usb = { vid = 0x1ffb, pid = 0x00b5 } }\n"
        + '[devices.camera]\nport = { path = "/dev/video0" }\n'
    )
    for path, bound in FIELD_BOUNDS.items():
        if path.startswith("simulator."):
            continue
        node: Any = profile
        for part in path.split("."):
            node = getattr(node, part)
        assert node == bound.default, path
        assert type(node) is type(bound.default), path


@pytest.mark.parametrize("bound", list(FIELD_BOUNDS.values()), ids=lambda b: b.path)
def test_registry_defaults_lie_within_their_own_bounds(bound: Bound) -> None:
    assert bound.violation(bound.default) is None
    assert bound.source


def test_models_are_frozen() -> None:
    profile = load_profile(SIM)
    with pytest.raises(ValidationError):
        profile.limits.max_pressure_mmhg = 400  # type: ignore[misc]


def test_dumped_toml_reads_back_to_the_same_profile() -> None:
    for path in (SIM, BENCH):
        profile = load_profile(path)
        assert parse_profile(dump_profile_toml(profile)) == profile


# --- unknown keys ----------------------------------------------------------------------------

UNKNOWN_KEY_PATHS = [
    "colour",
    "broker.hots",
    "devices.microscope",
    "devices.camera.frame_rate",
    "devices.pump.adress",
    "devices.board.heartbeat_ms",
    "syringe.diameter_mm",
    "limits.max_presure_mmhg",
    "fluid.poll_hz",
    "telemetry.video_hz",
    "simulator.speed",
    "devices.pump.port.baud",
]


@pytest.mark.parametrize("dotted", UNKNOWN_KEY_PATHS)
@pytest.mark.hazard("H20")
def test_unknown_key_anywhere_is_an_error_naming_its_dotted_path(dotted: str) -> None:
    path, value, expected = only_problem(set_path(sim_data(), dotted, 1))
    assert path == dotted
    assert value == 1
    assert expected.startswith("unknown key")


def test_unknown_key_inside_a_usb_port_spec_names_the_accepted_keys() -> None:
    data = set_path(sim_data(), "devices.board.port", {"usb": {"vid": 1, "pid": 2, "serial": "x"}})
    path, _, expected = only_problem(data)
    assert path == "devices.board.port.usb.serial"
    assert "serial_number" in expected


def test_misspelt_limit_suggests_the_real_name() -> None:
    _, _, expected = only_problem(set_path(sim_data(), "limits.max_presure_mmhg", 30))
    assert "did you mean max_pressure_mmhg?" in expected


# --- hard bounds -----------------------------------------------------------------------------


def _typed(bound: Bound, x: float) -> float:
    return int(x) if isinstance(bound.default, int) else float(x)


HIGH = [b for b in FIELD_BOUNDS.values() if b.maximum is not None]
LOW = [b for b in FIELD_BOUNDS.values() if b.minimum is not None]
EXCLUSIVE = [b for b in FIELD_BOUNDS.values() if b.above is not None]


@pytest.mark.parametrize("bound", HIGH, ids=lambda b: b.path)
@pytest.mark.hazard("H20")
def test_value_above_a_hard_bound_is_rejected_naming_field_value_and_bound(bound: Bound) -> None:
    assert bound.maximum is not None
    value = _typed(bound, bound.maximum + 1)
    path, given, expected = only_problem(set_path(sim_data(), bound.path, value))
    assert path == bound.path
    assert given == value
    assert expected.startswith(f"above the hard bound {format_number(bound.maximum)}")
    assert bound.source in expected


@pytest.mark.parametrize("bound", LOW, ids=lambda b: b.path)
@pytest.mark.hazard("H20")
def test_value_below_a_hard_bound_is_rejected(bound: Bound) -> None:
    assert bound.minimum is not None
    value = _typed(bound, bound.minimum - 1)
    path, given, expected = only_problem(set_path(sim_data(), bound.path, value))
    assert (path, given) == (bound.path, value)
    assert expected.startswith(f"below the hard bound {format_number(bound.minimum)}")


@pytest.mark.parametrize("bound", EXCLUSIVE, ids=lambda b: b.path)
def test_value_at_an_exclusive_lower_bound_is_rejected(bound: Bound) -> None:
    assert bound.above is not None
    value = _typed(bound, bound.above)
    path, _, expected = only_problem(set_path(sim_data(), bound.path, value))
    assert path == bound.path
    assert expected.startswith(f"must be above {format_number(bound.above)}")


def test_pump_baudrate_must_be_one_the_ne1000_speaks() -> None:
    path, value, expected = only_problem(set_path(sim_data(), "devices.pump.baudrate", 115200))
    assert (path, value) == ("devices.pump.baudrate", 115200)
    assert "300, 1200, 2400, 9600, 19200" in expected


def test_hard_bound_message_has_the_documented_style() -> None:
    with pytest.raises(ProfileError) as info:
        validate_profile(set_path(sim_data(), "limits.max_pressure_mmhg", 400))
    assert str(info.value).startswith(
        "limits.max_pressure_mmhg = 400: above the hard bound 150 mmHg (clinical.md"
    )


def test_every_problem_is_reported_not_just_the_first() -> None:
    data = set_path(sim_data(), "limits.max_pressure_mmhg", 400)
    data = set_path(data, "limits.contrast_volume_cap_ml", 9)
    data = set_path(data, "fluid.pump_poll_hz", 100)
    paths = [p[0] for p in problems_of(data)]
    assert paths == [
        "limits.max_pressure_mmhg",
        "limits.contrast_volume_cap_ml",
        "fluid.pump_poll_hz",
    ]
    with pytest.raises(ProfileError) as info:
        validate_profile(data)
    assert len(str(info.value).splitlines()) == 3


def test_bounds_also_hold_when_models_are_built_in_code() -> None:
    with pytest.raises(ValidationError, match="above the hard bound 150 mmHg"):
        LimitsConfig(max_pressure_mmhg=400)


# --- types -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dotted", "value"),
    [
        ("limits.max_pressure_mmhg", "40"),
        ("devices.pump.address", True),
        ("devices.pump.safe_mode_timeout_s", 2.0),
        ("limits.max_pressure_mmhg", float("nan")),
        ("limits.max_pressure_mmhg", float("inf")),
        ("broker.private", "yes"),
    ],
)
@pytest.mark.hazard("H20")
def test_values_of_the_wrong_type_are_rejected_not_coerced(dotted: str, value: object) -> None:
    path, _, _ = only_problem(set_path(sim_data(), dotted, value))
    assert path == dotted


def test_missing_required_fields_are_named_and_marked_required() -> None:
    problems = problems_of({"devices": {"pump": {}}})
    assert ("rig_id", MISSING, "required") in problems
    assert ("devices.pump.port", MISSING, "required") in problems
    assert ("devices.board", MISSING, "required") in problems
    with pytest.raises(ProfileError) as info:
        validate_profile({"devices": {"pump": {}}})
    assert "rig_id = (missing): required" in str(info.value).splitlines()


def test_rig_id_must_be_a_short_lowercase_name() -> None:
    path, value, _ = only_problem(set_path(sim_data(), "rig_id", "Bench 2"))
    assert (path, value) == ("rig_id", "Bench 2")


# --- cross-field checks ----------------------------------------------------------------------

CROSS_FIELD_CASES = [
    (
        {"limits.irrigation_pressure_cap_mmhg": 40.0},
        "limits.irrigation_pressure_cap_mmhg",
        "must be below limits.max_pressure_mmhg (40 mmHg)",
    ),
    (
        {"limits.backoff_start_mmhg": 30.0},
        "limits.backoff_start_mmhg",
        "must be below limits.irrigation_pressure_cap_mmhg (30 mmHg)",
    ),
    (
        {"limits.board_cutoff_mmhg": 40.0},
        "limits.board_cutoff_mmhg",
        "must be above limits.max_pressure_mmhg (40 mmHg)",
    ),
    (
        {"limits.bolus_max_rate_ml_min": 1.0, "limits.max_flow_ml_min": 0.8},
        "limits.bolus_max_rate_ml_min",
        "must not exceed limits.max_flow_ml_min (0.8 mL/min)",
    ),
    (
        {
            "limits.min_flow_for_resistance_ml_min": 0.5,
            "limits.max_flow_ml_min": 0.5,
            "limits.bolus_max_rate_ml_min": 0.5,
        },
        "limits.min_flow_for_resistance_ml_min",
        "must be below limits.max_flow_ml_min",
    ),
    (
        {"limits.min_flow_for_resistance_ml_min": 0.3, "limits.bolus_max_rate_ml_min": 0.2},
        "limits.bolus_max_rate_ml_min",
        "must be at least limits.min_flow_for_resistance_ml_min (0.3 mL/min)",
    ),
    (
        {"devices.board.heartbeat_period_ms": 125},
        "devices.board.watchdog_timeout_ms",
        "must be more than 2 x devices.board.heartbeat_period_ms (> 250 ms)",
    ),
    (
        {"fluid.pump_poll_hz": 1.0},
        "fluid.pump_poll_hz",
        "must be below devices.pump.safe_mode_timeout_s / 2 = 1 s",
    ),
    (
        {"fluid.prime_rate_ml_min": 4.0},
        "fluid.prime_rate_ml_min",
        "must not exceed limits.max_flow_ml_min (3 mL/min)",
    ),
    (
        {"fluid.nominal_resistance_mmhg_min_per_ml": 40.0},
        "fluid.nominal_resistance_mmhg_min_per_ml",
        "must be below limits.max_resistance_mmhg_min_per_ml (40)",
    ),
    ({"broker.username": "u"}, "broker.username", "not used with private = true"),
    ({"broker.camera_username": "c"}, "broker.camera_username", "not used with private = true"),
    (
        {"limits.saline_volume_cap_ml": 30.0},
        "limits.saline_volume_cap_ml",
        "at most syringe.volume_ml (10 mL): the rig has no refill",
    ),
    (
        {"syringe.volume_ml": 2.5, "limits.saline_volume_cap_ml": 2.0},
        "limits.contrast_volume_cap_ml",
        "at most syringe.volume_ml (2.5 mL)",
    ),
]


@pytest.mark.parametrize(("changes", "field", "message"), CROSS_FIELD_CASES)
@pytest.mark.hazard("H20")
def test_cross_field_check_names_the_field_and_the_rule(
    changes: dict[str, object], field: str, message: str
) -> None:
    data = sim_data()
    for dotted, value in changes.items():
        data = set_path(data, dotted, value)
    path, value, expected = only_problem(data)
    assert path == field
    assert value == changes.get(field, value)
    assert message in expected


def test_watchdog_exactly_twice_the_heartbeat_is_rejected_and_just_above_accepted() -> None:
    data = set_path(sim_data(), "devices.board.heartbeat_period_ms", 100)
    data = set_path(data, "devices.board.watchdog_timeout_ms", 200)
    assert only_problem(data)[0] == "devices.board.watchdog_timeout_ms"
    validate_profile(set_path(data, "devices.board.watchdog_timeout_ms", 201))


def test_pump_poll_must_feed_a_longer_safe_mode_timeout_too() -> None:
    data = set_path(sim_data(), "fluid.pump_poll_hz", 1.0)
    validate_profile(set_path(data, "devices.pump.safe_mode_timeout_s", 3))


@pytest.mark.parametrize("login", ["", "camera_"])
def test_password_file_needs_a_username(login: str) -> None:
    data = set_path(sim_data(), "broker.private", False)
    data = set_path(data, f"broker.{login}password_file", "/etc/pw")
    path, _, expected = only_problem(data)
    assert path == f"broker.{login}password_file"
    assert f"broker.{login}username" in expected


def test_sim_port_needs_a_simulator_section() -> None:
    data = sim_data()
    del data["simulator"]
    problems = problems_of(data)
    assert [p[0] for p in problems] == [
        "devices.pump.port",
        "devices.board.port",
        "devices.pedal.port",
        "devices.basket.port",
        "devices.camera.port",
    ]
    assert all("[simulator]" in p[2] for p in problems)


def test_cross_field_checks_hold_when_models_are_built_in_code() -> None:
    with pytest.raises(ValidationError, match=r"must be below limits\.max_pressure_mmhg"):
        LimitsConfig(irrigation_pressure_cap_mmhg=45.0)


# --- port specs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"path": "/dev/ttyUSB0"}, PathPort(path="/dev/ttyUSB0")),
        (
            {"usb": {"vid": 0x0403, "pid": 0x6001}},
            UsbPort.model_validate({"usb": {"vid": 0x0403, "pid": 0x6001}}),
        ),
        (
            {"usb": {"vid": 0x0403, "pid": 0x6001, "serial_number": "A10K1XYZ"}},
            UsbPort.model_validate(
                {"usb": {"vid": 0x0403, "pid": 0x6001, "serial_number": "A10K1XYZ"}}
            ),
        ),
        ({"sim": "pump"}, SimPort(sim="pump")),
    ],
)
def test_each_port_spec_form_is_accepted(spec: dict[str, Any], expected: object) -> None:
    profile = validate_profile(set_path(sim_data(), "devices.pump.port", spec))
    assert profile.devices.pump.port == expected


@pytest.mark.parametrize(
    "spec",
    [
        {"path": "/dev/ttyUSB0", "sim": "pump"},
        {},
        "/dev/ttyUSB0",
        {"device": "/dev/ttyUSB0"},
    ],
)
def test_a_port_spec_not_of_exactly_one_form_says_which_forms_are_accepted(spec: object) -> None:
    path, value, expected = only_problem(set_path(sim_data(), "devices.pump.port", spec))
    assert path == "devices.pump.port"
    assert value == spec
    assert expected.startswith("expected exactly one of")
    for form in ("{ path =", "{ usb = { vid =", "{ sim ="):
        assert form in expected


@pytest.mark.parametrize("field", ["vid", "pid"])
def test_usb_ids_are_sixteen_bit(field: str) -> None:
    usb = {"vid": 0x0403, "pid": 0x6001, field: 0x10000}
    path, value, _ = only_problem(set_path(sim_data(), "devices.board.port", {"usb": usb}))
    assert (path, value) == (f"devices.board.port.usb.{field}", 0x10000)


# --- files -----------------------------------------------------------------------------------


def test_toml_syntax_error_becomes_a_profile_error_with_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('rig_id = "x"\n[limits\nmax_pressure_mmhg = 40\n')
    with pytest.raises(ProfileError) as info:
        load_profile(bad)
    assert len(info.value.problems) == 1
    assert str(info.value).startswith("TOML syntax error at line 2, column")
    assert info.value.source == bad


def test_non_utf8_file_is_a_profile_error(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('rig_id = "caf\u00e9"\n'.encode("latin-1"))
    with pytest.raises(ProfileError, match="not UTF-8"):
        load_profile(bad)


def test_unreadable_file_raises_oserror_not_profile_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        load_profile(tmp_path / "absent.toml")


def test_relative_broker_files_resolve_against_the_profile_folder(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        'rig_id = "t-1"',
        'rig_id = "t-1"\n[broker]\nusername = "u"\npassword_file = "secrets/pw"\n'
        'tls_ca_file = "/abs/ca.pem"\ncamera_username = "c"\ncamera_password_file = "cam/pw"',
    )
    (tmp_path / "rig.toml").write_text(text)
    profile = load_profile(tmp_path / "rig.toml")
    assert profile.broker.password_file == tmp_path / "secrets" / "pw"
    assert profile.broker.camera_password_file == tmp_path / "cam" / "pw"
    assert profile.broker.tls_ca_file == Path("/abs/ca.pem")


# --- docs ------------------------------------------------------------------------------------


def test_docs_table_matches_the_registry() -> None:
    docs = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert bounds_table_markdown() in docs, (
        "docs/configuration.md is out of date: paste rig.config.bounds_table_markdown()"
    )


def _leaf_fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every dotted field path of `model`, nested sections expanded (port specs are leaves)."""
    paths: list[str] = []
    for name, info in model.model_fields.items():
        nested = [
            arg
            for arg in (info.annotation, *typing.get_args(info.annotation))
            if isinstance(arg, type) and issubclass(arg, BaseModel)
        ]
        if nested and name != "port":
            paths.extend(_leaf_fields(nested[0], f"{prefix}{name}."))
        else:
            paths.append(f"{prefix}{name}")
    return paths


def test_docs_describe_every_field_of_every_section() -> None:
    docs = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    for path in _leaf_fields(RigProfile):
        name = path.rpartition(".")[2]
        assert f"`{path}`" in docs or f"`{name}`" in docs, path


def test_a_cap_of_exactly_one_syringe_is_accepted() -> None:
    data = set_path(sim_data(), "limits.saline_volume_cap_ml", 10.0)
    assert validate_profile(data).limits.saline_volume_cap_ml == 10.0


def test_simulator_time_scale_is_refused_with_the_reason_it_does_not_exist() -> None:
    """It once was a setting that changed nothing: a profile that sets it must hear so."""
    path, value, expected = only_problem(set_path(sim_data(), "simulator.time_scale", 1.0))
    assert (path, value) == ("simulator.time_scale", 1.0)
    assert "real time" in expected and "remove the key" in expected


@pytest.mark.parametrize("limit", [40.0, 30.0])
def test_the_boards_resistance_stop_must_be_looser_than_the_hosts(limit: float) -> None:
    data = set_path(sim_data(), "devices.board.resistance_stop_mmhg_min_per_ml", limit)
    path, value, expected = only_problem(data)
    assert (path, value) == ("devices.board.resistance_stop_mmhg_min_per_ml", limit)
    assert "above limits.max_resistance_mmhg_min_per_ml (40)" in expected
    assert "must not pre-empt it" in expected


def test_the_boards_resistance_stop_has_hard_bounds() -> None:
    data = set_path(sim_data(), "devices.board.resistance_stop_samples", 51)
    path, value, expected = only_problem(data)
    assert (path, value) == ("devices.board.resistance_stop_samples", 51)
    assert "50" in expected


def test_the_basket_on_serial_takes_a_serial_port_and_its_rate_goes_to_the_simulator() -> None:
    data = set_path(sim_data(), "devices.basket.transport", "serial")
    data = set_path(data, "devices.basket.baudrate", 115_200)
    profile = validate_profile(data)
    assert sim_baudrates(profile)["basket"] == 115_200
    on_a_path = set_path(data, "devices.basket.port", {"path": "/dev/ttyACM1"})
    assert validate_profile(on_a_path).devices.basket is not None
    at_a_console = set_path(data, "devices.basket.port", {"console": "surgeon"})
    path, _, expected = only_problem(at_a_console)
    assert path == "devices.basket.port" and "serial device" in expected
    on_usb_by_path = set_path(sim_data(), "devices.basket.port", {"path": "/dev/ttyACM1"})
    assert only_problem(on_usb_by_path)[0] == "devices.basket.port"
    assert "basket" not in sim_baudrates(validate_profile(sim_data()))
