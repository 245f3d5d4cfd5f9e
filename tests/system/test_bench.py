"""The benchmarks on the simulated rig run end to end and report their figures (speed itself is
not asserted)."""

from __future__ import annotations

import pytest

from rig.bench.board_stop import run_board_stop, trial_flows
from rig.bench.camera import SimCamera, run_camera
from rig.bench.envelope import EnvelopeGrid
from rig.bench.pedal_latency import run_pedal_latency
from rig.bench.record_crash import run_record_crash
from rig.bench.stop_latency import run_stop_latency, stop_floor_ms, stop_wire_ms
from rig.config import DEFAULT_PROFILE, load_profile

pytestmark = [pytest.mark.system, pytest.mark.timeout(120)]


async def test_stop_latency_benchmark_reports_figures() -> None:
    profile = load_profile(DEFAULT_PROFILE)
    result = await run_stop_latency(DEFAULT_PROFILE, profile, trials=3)
    assert result["trials"] == 3
    for key in ("p50_ms", "p99_ms", "max_ms", "floor_ms", "bolus_ul_p99"):
        assert isinstance(result[key], float), key
    # Physics: no stop can beat one sample period plus the stop command's wire time.
    assert result["p50_ms"] >= result["floor_ms"] == round(stop_floor_ms(profile), 3)
    assert sum(result["causes"].values()) == 3


async def test_camera_benchmark_reports_figures() -> None:
    profile = load_profile(DEFAULT_PROFILE)
    # The smallest camera: the test checks the figures are there, and a loaded CI machine's
    # false stale-pressure stop (samples over 50 ms apart) is what more video would risk.
    result = await run_camera(DEFAULT_PROFILE, profile, 3, SimCamera(160, 120, 10.0))
    assert result["stop_trials"] == 3 and result["frame_size"] == "160x120"
    assert result["fps_mean"] > 0 and result["video_frames"] > 0
    assert isinstance(result["dropped_frames"], int)
    for key in ("latency_p95_ms", "cpu_per_frame_ms", "baseline_cpu_per_frame_ms"):
        assert result[key] > 0, key
    assert result["fluid_loop_jitter_p99_ms"] >= 0
    assert result["stop_latency_p99_ms"] >= result["floor_ms"] == round(stop_floor_ms(profile), 3)
    assert result["pipeline"]["method"] == "gaussian"  # 160x120 does not resolve the cores


def test_floor_is_one_sample_period_plus_the_stop_frame_on_the_wire() -> None:
    profile = load_profile(DEFAULT_PROFILE)
    # Safe-mode STP frame for address 0: STX, len, "0STP", CRC hi, CRC lo, ETX = 9 bytes at 19200 8N1.
    assert stop_floor_ms(profile) == pytest.approx(2.0 + 9 * 10 / 19200 * 1000)


async def test_record_crash_benchmark_counts_what_a_kill_could_lose() -> None:
    profile = load_profile(DEFAULT_PROFILE)
    result = await run_record_crash(DEFAULT_PROFILE, profile, cycles=1)
    assert result["cycles"] == 1 and result["procedure_resumed"] == 1
    assert result["acknowledged"] >= 2 and result["lost"] == 0, result
    assert result["recovery_ms_p99"] >= result["first_answer_ms_p99"] > 0


async def test_pedal_benchmark_reports_figures() -> None:
    profile = load_profile(DEFAULT_PROFILE)
    result = await run_pedal_latency(DEFAULT_PROFILE, profile, trials=5)
    assert result["trials"] == 5
    for key in ("p50_ms", "p99_ms", "max_ms", "floor_ms", "p99_over_floor"):
        assert isinstance(result[key], float), key
    # The stop's last bit cannot arrive before the frame's wire time has passed.
    assert result["p50_ms"] >= result["floor_ms"] == round(stop_wire_ms(profile), 3)
    # The basket pedal (the middle one on the simulator profile): its release halts the basket.
    assert result["basket_trials"] == 5
    assert 0 < result["basket_p50_ms"] <= result["basket_max_ms"]


@pytest.mark.parametrize("flow", [0.1, 3.0])
async def test_stop_latency_runs_at_the_ends_of_the_flow_range(flow: float) -> None:
    profile = load_profile(DEFAULT_PROFILE)
    result = await run_stop_latency(DEFAULT_PROFILE, profile, trials=2, flow_ml_min=flow)
    assert result["flow_ml_min"] == flow
    assert sum(result["causes"].values()) == 2
    assert result["p50_ms"] >= result["floor_ms"]


def test_bench_refuses_a_flow_outside_the_profile_and_too_few_flows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from rig.cli.main import main

    assert main(["bench", "stop-latency", "--flow-ml-min", "5"]) == 2
    assert "--flow-ml-min = 5: expected 0.1 to 3 mL/min" in capsys.readouterr().err
    assert main(["bench", "envelope", "--flows", "1"]) == 1
    assert "--flows = 1: expected at least 2" in capsys.readouterr().err


async def test_board_stop_benchmark_reports_figures() -> None:
    """One trial per trial flow, and a healthy grid cut to its ends (a prime, a restart, a flow
    change, a pressure setpoint, a bolus)."""
    profile = load_profile(DEFAULT_PROFILE)
    low, high = profile.limits.min_flow_for_resistance_ml_min, profile.limits.max_flow_ml_min
    grid = EnvelopeGrid(
        flows_ml_min=(low, high),
        pressures_mmhg=(profile.limits.irrigation_pressure_cap_mmhg,),
        bolus_rates_ml_min=(profile.limits.bolus_max_rate_ml_min,),
        restart_delays_s=(0.1,),
        steady_s=2.0,
        change_dwell_s=1.0,
        restart_run_s=1.0,
    )
    flows = trial_flows(profile)
    result = await run_board_stop(profile, len(flows), grid)
    assert result["trials"] == len(flows) and result["flows_ml_min"] == list(flows)
    # A wall at the board's top flow reaches its limit before its 80 mmHg cut-off.
    assert max(flows) * result["limit_mmhg_min_per_ml"] < profile.limits.board_cutoff_mmhg
    for key in ("p50_ms", "p99_ms", "host_stop_p99_ms"):
        assert isinstance(result[key], float), key
    # Its persistence: the trigger sample and one more; no serial wire in its path.
    assert result["p50_ms"] >= (result["persistence_samples"] - 1) * 2.0
    assert result["false_stops"] == 0, result["false_stop_details"]
