"""Real aiortc calls across the emulated line, in virtual time (deterministic, immune to host load), plus
one short real-time smoke test of the socket path (the whole file runs in about 15 s)."""

from __future__ import annotations

import json
import math
import time

import pytest

from emulators.call import run_emulated_call
from emulators.config import CallConfig
from emulators.output import write_call_result
from twin.datafiles import read_calibration_csv
from twin.profiles import get_profile


@pytest.fixture(scope="module")
def gen1_call():
    """One 8 s gen1 call over adsl-512-128 (128 kbit/s up, 512 down) in virtual time, shared below."""
    config = CallConfig(profile=get_profile("gen1"), duration_s=8.0, scan_kb=20.0, print_kb=40.0,
                        documents_at_s=0.5, seed=1, clock="virtual")
    t0 = time.perf_counter()
    result = run_emulated_call(config)
    return result, time.perf_counter() - t0


def test_gen1_call_gets_video_both_ways(gen1_call):
    result, _ = gen1_call
    assert not result.dead and not result.errors
    assert result.connection.ever_connected and not result.connection.died
    assert result.setup.connected_s < 2.0
    up, down = result.video.up, result.video.down
    assert up.frames_decoded > 0 and down.frames_decoded > 0
    assert down.fps_mean > 12  # 512 kbit/s downlink carries gen1's 15 fps
    assert up.fps_mean > 3
    assert up.frames_unidentified == 0 and down.frames_unidentified == 0
    assert 25 < down.psnr_db < 60 and 0.5 < down.ssim <= 1
    assert down.delay.p50_ms > result.config.describe()["line"]["fixed_delay_down_ms"]
    assert result.documents.print.complete
    # gen1 paces its documents in the kiosk application's 4 KB messages
    doc = result.documents.print
    assert doc.message_bytes == 4096 and doc.messages_sent == -(-40_000 // 4096)
    assert doc.goodput_kbps == pytest.approx(40_000 * 8 / 1000 / doc.duration_s)


def test_gen1_audio_arrives_whole_in_60_ms_frames(gen1_call):
    """No packet is lost on this line: every packet received is decoded into 60 ms of audio, except the
    few aiortc's audio jitter buffer still holds at the end; the rest of the shortfall is packets still
    queued on the line. Loss is counted in samples, whatever the frame lengths."""
    result, _ = gen1_call
    for direction in ("up", "down"):
        audio = result.audio[direction]
        assert audio.packets_lost == 0
        assert audio.samples_sent == audio.frames_sent * 2880  # the microphone hands over 60 ms frames
        assert audio.samples_decoded == audio.frames_decoded * 2880
        assert audio.packets_received - 5 <= audio.frames_decoded <= audio.packets_received <= audio.frames_sent
        expected = 100.0 * (1 - audio.samples_decoded / audio.samples_sent)
        assert audio.decoded_loss_pct == pytest.approx(expected)
    # The downlink has no standing queue: nearly all of its audio is played.
    assert result.audio.down.decoded_loss_pct < 5.0


def test_gen1_video_bitrate_stays_near_the_cap(gen1_call):
    """On the uncongested 512 kbit/s downlink the VP8 encoder runs at the profile's 50 kbit/s cap."""
    result, _ = gen1_call
    cap = get_profile("gen1").video_max_kbps
    encoder_kbps = result.video.down.encoder_kbps  # RTP payload bytes the agent sent
    assert 0.6 * cap < encoder_kbps < 1.25 * cap, encoder_kbps
    assert result.encoder.video_max_bps == cap * 1000
    # Delivered IP bitrate adds RTP/SRTP/UDP/IP headers, not more than about 30 %.
    assert result.network.down.video_kbps_mean < 1.3 * 1.25 * cap


def test_virtual_call_opens_no_socket(gen1_call):
    """In virtual time the peers sit on the in-memory network's addresses; no relay socket exists."""
    from emulators.virtual_time import AGENT_HOST, KIOSK_HOST

    result, _ = gen1_call
    hosts = {a.split(":")[0] for a in result.connection.listen_addresses}
    assert hosts == {KIOSK_HOST, AGENT_HOST}
    assert result.network.up.late_ms.max == 0.0  # deliveries exactly on time


def test_real_time_smoke_call_listens_on_loopback_only():
    """The real-time path (sockets through the UDP relay on 127.0.0.1) still carries a call."""
    config = CallConfig(profile=get_profile("gen1"), duration_s=4.0, scan_kb=0, print_kb=10.0, documents_at_s=0.5,
                        seed=1, clock="real", compute_ssim=False)
    t0 = time.perf_counter()
    result = run_emulated_call(config)
    assert time.perf_counter() - t0 < 4.0 + 60.0  # it ends (loose bound: a loaded host starts slowly)
    assert not result.dead and not result.errors
    assert result.connection.ever_connected and result.setup.connected_s < 2.0
    assert result.video.up.frames_decoded > 0 and result.video.down.frames_decoded > 0
    addresses = result.connection.listen_addresses
    assert len(addresses) >= 4  # two relay sockets + one ICE socket per peer
    assert all(a.startswith("127.0.0.1:") for a in addresses), addresses
    assert result.config.clock == "real" and result.wall.wall_s >= 4.0


def test_call_ends_on_time_and_writes_results(gen1_call, tmp_path):
    result, wall_s = gen1_call
    assert result.duration_s == pytest.approx(8.0)
    assert result.wall_s < 8.0 + 4.0
    out = write_call_result(result, tmp_path / "run")
    data = json.loads((out / "result.json").read_text())
    assert data["video"]["up"]["frames_decoded"] == result.video.up.frames_decoded
    assert (out / "timeseries.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    "overrides",
    [
        {"loss_pct": 100.0},  # dead line
        {"outages": ((0.0, 1000.0),)},  # outage longer than the call
    ],
    ids=["loss-100", "outage-longer-than-call"],
)
def test_dead_line_ends_on_time_with_a_dead_verdict(overrides):
    config = CallConfig(profile=get_profile("gen1"), duration_s=3.0, clock="virtual", **overrides)
    t0 = time.perf_counter()
    result = run_emulated_call(config)
    wall = time.perf_counter() - t0
    assert wall < 3.0 + 5.0
    assert result.dead
    assert result.video.up.frames_decoded == 0 and result.video.down.frames_decoded == 0
    assert result.verdict[0] == "no video received: line dead"
    assert result.video.up.fps_mean == 0
    drops = result.network.up.packets_dropped
    assert drops["loss" if "loss_pct" in overrides else "outage"] == result.network.up.packets_in > 0
    json.dumps(result.to_dict(), allow_nan=False)


def test_calibration_row_has_exactly_the_twin_columns(gen1_call, tmp_path):
    from emulators.calibrate import calibration_row, rows_to_csv
    from twin.quality import CALIBRATION_COLUMNS

    result, _ = gen1_call
    row = calibration_row(result, get_profile("gen1"), "adsl-512-128", 2000.0, 0, documents=False)
    assert tuple(row) == CALIBRATION_COLUMNS
    assert row["up_kbps"] == 128 and row["down_kbps"] == 512
    assert 1.0 <= row["video_mos_up"] <= 5.0 and 1.0 <= row["pesq_up"] <= 4.7
    assert math.isnan(row["scan_s"]) or row["scan_s"] > 0
    path = tmp_path / "cal.csv"
    path.write_text(rows_to_csv([row]))
    assert path.read_text().splitlines()[0] == ",".join(CALIBRATION_COLUMNS)
    table = read_calibration_csv(path)  # the twin reads what the emulator writes
    assert table.rows[0].video_fps_up == pytest.approx(row["video_fps_up"], rel=1e-5)
