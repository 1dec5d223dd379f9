"""Virtual time (emulators.virtual_time): the loop's clock, the in-memory network against its LinkQueue,
determinism of whole calls (same seed, same bytes; across processes; under host load), and the guard
against new wall-clock reads in the installed aiortc/aioice."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from emulators.call import run_emulated_call
from emulators.config import CallConfig
from emulators.output import write_call_result
from emulators.virtual_time import (
    AGENT_HOST,
    KIOSK_HOST,
    TIME_PATCHED_MODULES,
    WALL_CLOCK_READS,
    VirtualClockLoop,
    VirtualNetwork,
    VirtualRelay,
    VirtualTimeDeadlock,
    deterministic_aiortc,
    run_virtual,
    scan_wall_clock_reads,
)
from twin.line import AdslLine, BernoulliLoss, Direction, LinkQueue, get_offer
from twin.profiles import get_profile

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------------


def test_clock_jumps_to_the_next_timer_instead_of_sleeping():
    async def body():
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.sleep(3600.0)
        fired = []
        loop.call_later(0.25, fired.append, loop.time)
        await asyncio.sleep(0.5)
        return loop.time() - t0, fired

    wall0 = time.perf_counter()
    elapsed, fired = run_virtual(body)
    assert elapsed == pytest.approx(3600.5, abs=1e-9)
    assert len(fired) == 1
    assert time.perf_counter() - wall0 < 60.0  # the virtual hour took no real hour (loose: no timing flake)


def test_wait_for_times_out_on_the_virtual_clock():
    async def body():
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.Event().wait(), timeout=7.0)
        return loop.time() - t0

    assert run_virtual(body) == pytest.approx(7.0, abs=1e-9)


def test_waiting_for_nothing_is_a_clear_deadlock_error():
    async def body():
        await asyncio.get_running_loop().create_future()  # nobody will ever set it, no timer pending

    with pytest.raises(VirtualTimeDeadlock, match="deadlocked"):
        run_virtual(body)


def test_executor_runs_inline_and_sockets_are_refused():
    async def body():
        loop = asyncio.get_running_loop()
        import threading

        caller = await loop.run_in_executor(None, lambda: threading.get_ident())
        assert caller == threading.get_ident()
        with pytest.raises(RuntimeError, match="VirtualNetwork"):
            await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))

    run_virtual(body)


# --------------------------------------------------------------------------------------------------
# The network: exactly what the LinkQueue decides
# --------------------------------------------------------------------------------------------------


class _Recorder(asyncio.DatagramProtocol):
    def __init__(self, loop) -> None:
        self.loop = loop
        self.got: list[tuple[float, bytes]] = []

    def datagram_received(self, data, addr) -> None:
        self.got.append((self.loop.time(), data))


@pytest.mark.parametrize("loss_pct", [0.0, 5.0])
def test_virtual_relay_delivers_exactly_when_the_link_queue_says(loss_pct):
    """A saturating constant-rate probe kiosk -> agent: each delivery time equals a fresh LinkQueue's
    answer for the same send times, to the microsecond (no event-loop latency in virtual time)."""
    line = AdslLine(get_offer("adsl-512-128"), 2000.0)
    ip_bytes, rate_kbps, n = 200, 200.0, 300  # 1.6x the 128 kbit/s uplink: the queue builds up

    def queues():
        loss = BernoulliLoss(loss_pct) if loss_pct else None
        return (LinkQueue.from_line(line, Direction.UP, np.random.default_rng(4), loss=loss),
                LinkQueue.from_line(line, Direction.DOWN, np.random.default_rng(5)))

    async def body():
        loop = asyncio.get_running_loop()
        network = VirtualNetwork(loop)
        loop.network = network
        up, down = queues()
        relay = VirtualRelay(up, down, network)
        await relay.start()
        tx, _ = await loop.create_datagram_endpoint(lambda: _Recorder(loop), local_addr=(KIOSK_HOST, 0))
        rx_transport, rx = await loop.create_datagram_endpoint(lambda: _Recorder(loop), local_addr=(AGENT_HOST, 0))
        dest = rx_transport.get_extra_info("sockname")
        interval = ip_bytes * 8 / (rate_kbps * 1000)
        for i in range(n):
            tx.sendto(i.to_bytes(4, "big") + bytes(ip_bytes - 28 - 4), dest)
            await asyncio.sleep(interval)
        await asyncio.sleep(5.0)
        send_s = np.arange(n) * interval
        return send_s, rx.got, relay

    send_s, got, relay = run_virtual(body)
    q, _ = queues()
    predicted = [q.send(float(t), ip_bytes) for t in send_s]
    arrived = {int.from_bytes(d[:4], "big"): t for t, d in got}
    for i, p in enumerate(predicted):
        if p is None:
            assert i not in arrived
        else:
            assert arrived[i] == pytest.approx(p, abs=1e-6)
    assert len(arrived) == sum(p is not None for p in predicted) > 0.5 * n
    digest = relay.event_digest()
    assert digest.events == n and len(digest.sha256) == 64


# --------------------------------------------------------------------------------------------------
# Whole calls: same seed, same call
# --------------------------------------------------------------------------------------------------

CALL = {"duration_s": 4.0, "scan_kb": 8.0, "print_kb": 8.0, "documents_at_s": 0.5, "loss_pct": 1.0, "seed": 7,
        "clock": "virtual"}


def _deterministic_json(result) -> str:
    return json.dumps(result.deterministic_dict(), sort_keys=True, allow_nan=False)


@pytest.fixture(scope="module")
def reference_call():
    return run_emulated_call(CallConfig(profile=get_profile("gen1"), **CALL))


def test_same_seed_same_call_in_one_process(reference_call):
    again = run_emulated_call(CallConfig(profile=get_profile("gen1"), **CALL))
    assert again.digest == reference_call.digest
    assert _deterministic_json(again) == _deterministic_json(reference_call)
    assert reference_call.digest.events > 300
    assert reference_call.video.up.frames_decoded > 0 and not reference_call.errors


def test_same_seed_same_bytes_in_another_process(reference_call, tmp_path):
    """``twin emulate --clock virtual`` in a fresh interpreter (other hash seed, other addresses) writes a
    result.json whose every byte outside ``wall`` equals this process's result."""
    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "twin.cli", "emulate", "--clock", "virtual", "--profile", "gen1",
           "--duration-s", "4", "--scan-kb", "8", "--print-kb", "8", "--loss-pct", "1", "--seed", "7",
           "--out", str(out), "--no-plot"]
    env = {"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"}
    # documents_at_s is not a CLI option: the reference call uses 0.5 s, the CLI default is 1 s.
    ref = run_emulated_call(CallConfig(profile=get_profile("gen1"), **{**CALL, "documents_at_s": 1.0}))
    done = subprocess.run(cmd, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads((out / "result.json").read_text())
    assert set(data["wall"]) == {"started_at", "wall_s", "cpu_s", "speedup"}
    data.pop("wall")
    write_call_result(ref, tmp_path / "here", plot=False)
    here = json.loads((tmp_path / "here" / "result.json").read_text())
    here.pop("wall")
    assert data["digest"] == here["digest"]
    assert json.dumps(data, sort_keys=True) == json.dumps(here, sort_keys=True)


def test_host_load_does_not_change_a_virtual_call(reference_call, monkeypatch):
    """A real 15 ms busy-wait in every video encode (a loaded host) changes nothing in virtual time."""
    from aiortc.codecs import vpx

    original = vpx.Vp8Encoder.encode

    def slow_encode(self, frame, force_keyframe=False):
        t_end = time.perf_counter() + 0.015
        while time.perf_counter() < t_end:
            pass
        return original(self, frame, force_keyframe)

    monkeypatch.setattr(vpx.Vp8Encoder, "encode", slow_encode)
    loaded = run_emulated_call(CallConfig(profile=get_profile("gen1"), **CALL))
    assert loaded.digest == reference_call.digest
    assert _deterministic_json(loaded) == _deterministic_json(reference_call)


def test_a_handshake_answered_late_in_real_time_changes_nothing(reference_call, monkeypatch):
    """The first six DTLS datagrams each handed over after 1.3 s of real time (longer than OpenSSL's
    first retransmission timeout, on any host): OpenSSL finds its real timer expired when it reads them,
    and the retransmissions it then makes are dropped, as a host without load never makes them: the same
    call, event for event (before the fix: 338 events instead of 345)."""
    from emulators import virtual_time

    connections = []
    original_make = virtual_time._make_dtls_connection_class

    def spy_make(ssl_module, now_s):
        cls = original_make(ssl_module, now_s)

        class Spied(cls):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                connections.append(self)

        return Spied

    original_deliver = virtual_time.VirtualNetwork.deliver
    held = []

    def late_deliver(self, src, dst, data):
        if 19 < data[0] < 64 and len(held) < 6:  # a DTLS record (RFC 7983 demultiplexing)
            held.append(len(data))
            time.sleep(1.3)
        return original_deliver(self, src, dst, data)

    monkeypatch.setattr(virtual_time, "_make_dtls_connection_class", spy_make)
    monkeypatch.setattr(virtual_time.VirtualNetwork, "deliver", late_deliver)
    late = run_emulated_call(CallConfig(profile=get_profile("gen1"), **CALL))
    assert len(held) == 6 and len(connections) == 2
    assert sum(c.dropped_retransmissions for c in connections) > 0
    assert late.digest == reference_call.digest
    assert _deterministic_json(late) == _deterministic_json(reference_call)


def test_sharing_the_voice_encoding_changes_nothing_but_cpu(reference_call, monkeypatch):
    """The same call with each peer encoding its own voice, and its own video in its own process, is
    the same call, byte for byte (this lossy call has PLIs and bitrate changes, so the VP8 worker's
    replays are in it); with sharing (the default) about half the Opus frames were encoded once for
    both peers."""
    import functools

    from emulators import virtual_time

    made = []
    original_init = virtual_time.SharedVoiceEncoding.__init__

    def spy_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(virtual_time.SharedVoiceEncoding, "__init__", spy_init)
    shared = run_emulated_call(CallConfig(profile=get_profile("gen1"), **CALL))
    assert len(made) == 1 and made[0].shared > 0.4 * made[0].encoded > 10
    monkeypatch.setattr(virtual_time, "deterministic_aiortc",
                        functools.partial(deterministic_aiortc, share_voice_encoding=False,
                                          offload_encoding=False))
    alone = run_emulated_call(CallConfig(profile=get_profile("gen1"), **CALL))
    assert len(made) == 1  # no sharing the second time
    for result in (shared, alone):
        assert result.digest == reference_call.digest
        assert _deterministic_json(result) == _deterministic_json(reference_call)


def test_shared_voice_encoding_gives_each_encoder_its_own_packets():
    """Two encoders through one SharedVoiceEncoding give exactly the packets each would give alone, when
    one of them leaves the voice (a foreign frame, then voice again) or lags behind the other."""
    from aiortc.codecs import opus
    from av import AudioFrame

    from emulators.encoder_setup import encoder_limits
    from emulators.media import AUDIO_TIME_BASE, voice_samples
    from emulators.virtual_time import SharedVoiceEncoding

    size = 2880

    def frame(k: int, foreign: bool = False):
        samples = voice_samples(k * size, size)
        if foreign:
            samples = np.random.default_rng(k).integers(-3000, 3000, size).astype(np.int16)
        f = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        f.sample_rate, f.pts, f.time_base = 48_000, k * size, AUDIO_TIME_BASE
        return f

    schedules = {  # (frame index, foreign?) fed to each encoder, interleaved a then b
        "a": [(k, False) for k in range(12)],
        "b": [(k, False) for k in range(5)] + [(5, True)] + [(k, False) for k in range(6, 12)],
        "c": [(k, False) for k in range(11)] + [(11, True)],
    }
    with encoder_limits(get_profile("gen1")):
        alone = {}
        for name, schedule in schedules.items():
            encoder = opus.OpusEncoder()
            alone[name] = [encoder.encode(frame(k, f)) for k, f in schedule]
        sharing = SharedVoiceEncoding(opus.OpusEncoder.encode)
        encoders = {name: opus.OpusEncoder() for name in schedules}
        together = {name: [] for name in schedules}
        # c lags: it starts after a and b are done, reads what a encoded (0-10: the frames are kept for
        # every encoder of a group, not only two), then meets a foreign frame and must first feed its
        # libopus 0-10.
        for step in range(12):
            for name in ("a", "b"):
                k, f = schedules[name][step]
                together[name].append(sharing.encode(encoders[name], frame(k, f)))
        for k, f in schedules["c"]:
            together["c"].append(sharing.encode(encoders["c"], frame(k, f)))
    assert together == alone
    assert sharing.shared == 5 + 11  # b took 0-4 from a, c took 0-10


def test_vp8_worker_gives_each_encoder_exactly_its_own_packets():
    """Requests with bitrate moves below and above aiortc's 10 % re-creation threshold, keyframes
    (PLIs) and two interleaved encoders: the worker's answers equal aiortc's encoder run inline."""
    from aiortc.codecs import vpx

    from emulators.coding_worker import CodingWorker
    from emulators.encoder_setup import encoder_limits
    from emulators.media import VIDEO_TIME_BASE, SyntheticScene, _register_frame, frame_pts

    scene = SyntheticScene(320, 240)

    def frame(n: int):
        f = scene.video_frame(n)
        f.pts, f.time_base = frame_pts(n, 15.0), VIDEO_TIME_BASE
        _register_frame(f, scene, n, 15.0)
        return f

    # (frame, keyframe?, target bitrate) per step; 32k -> 30.5k stays in the context, 24k re-creates it.
    steps = [(0, True, 32_000), (1, False, 32_000), (2, False, 30_500), (3, True, 30_500), (4, False, 30_500),
             (5, False, 24_000), (6, False, 24_000), (7, True, 24_000), (8, False, 31_000), (9, False, 31_000),
             (10, False, 31_000), (11, True, 31_000), (12, False, 31_000)]
    with encoder_limits(get_profile("gen1")):
        inline = {}
        for name in ("a", "b"):
            enc = vpx.Vp8Encoder()
            enc.picture_id = 100
            out = []
            for n, key, bitrate in steps:
                enc.target_bitrate = bitrate
                out.append(enc.encode(frame(n), key))
            inline[name] = out
        worker = CodingWorker(vpx.Vp8Encoder.encode, vpx.Vp8Encoder)
        try:
            encoders = {name: vpx.Vp8Encoder() for name in ("a", "b")}
            offloaded = {name: [] for name in encoders}
            for enc in encoders.values():
                enc.picture_id = 100
            for n, key, bitrate in steps:
                for name, enc in encoders.items():
                    enc.target_bitrate = bitrate
                    offloaded[name].append(worker.encode(enc, frame(n), key))
        finally:
            worker.close()
    assert offloaded == inline
    assert worker.frames == 2 * len(steps)
    with pytest.raises(RuntimeError, match="SyntheticCameraTrack"):
        CodingWorker.encode(worker, encoders["a"], scene.video_frame(99))  # not from a camera


def test_a_dead_coding_worker_is_reported_in_the_call_errors(monkeypatch):
    """aiortc's sender only logs an encoder exception and stops sending; a worker killed mid-call must
    show in the call's errors, and the call still ends on time."""
    import os
    import signal

    from emulators import coding_worker

    original = coding_worker.CodingWorker._encode

    def kill_at_frame_20(self, encoder, frame, force_keyframe):
        if self.frames == 20:
            os.kill(self._video.process.pid, signal.SIGKILL)
            self._video.process.join()
        return original(self, encoder, frame, force_keyframe)

    monkeypatch.setattr(coding_worker.CodingWorker, "_encode", kill_at_frame_20)
    result = run_emulated_call(CallConfig(profile=get_profile("gen1"), **{**CALL, "loss_pct": 0.0}))
    assert any("VP8 encode" in e and "died" in e for e in result.errors), result.errors
    assert result.duration_s == CALL["duration_s"]


def test_lost_dtls_handshake_flights_retransmit_at_the_same_virtual_time_whatever_the_host(monkeypatch):
    """With 15 % loss this seed loses a DTLS flight: OpenSSL's real-clock timer has to fire. Real delays
    that differ between flights (a host that gets busy: 15 ms of real sleep per datagram sent from
    0.1 s on) must not move the retransmission on the virtual clock. (Telling a timer restart from the
    real remaining time, as this shim first did, loses here: the second flight's restart looks like no
    restart and the retransmission comes one round trip early.)"""
    from emulators import virtual_time

    config = {**CALL, "duration_s": 2.0, "scan_kb": 0.0, "print_kb": 0.0, "loss_pct": 15.0, "seed": 14,
              "line": AdslLine(get_offer("adsl-2048-256"), 3000.0), "profile": get_profile("aiortc-stock")}
    calm = run_emulated_call(CallConfig(**config))
    assert calm.setup.connected_s > 1.0  # connected only after a 1 s DTLS retransmission timeout
    original = virtual_time.VirtualNetwork.send

    def slow_send(self, src, dst, data):
        if 0.1 < self.loop.time() < 3.0:
            time.sleep(0.015)
        return original(self, src, dst, data)

    monkeypatch.setattr(virtual_time.VirtualNetwork, "send", slow_send)
    slow = run_emulated_call(CallConfig(**config))
    assert slow.setup == calm.setup
    assert _deterministic_json(slow) == _deterministic_json(calm)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_coding_workers_exit_when_the_call_process_is_killed(tmp_path):
    """SIGKILL (or an OOM kill) of a virtual-time call leaves no worker behind: each pipe's only writer
    was the dead call, so the workers read end-of-file and exit."""
    import os
    import signal

    cmd = [sys.executable, "-m", "twin.cli", "emulate", "--clock", "virtual", "--duration-s", "60", "--no-plot",
           "--out", str(tmp_path / "call")]
    call = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def children() -> list[int]:
        found = []
        for task in Path(f"/proc/{call.pid}/task").glob("*"):
            try:
                found += [int(pid) for pid in (task / "children").read_text().split()]
            except FileNotFoundError:  # a thread that ended between the listing and the read
                continue
        return found

    from conftest import wait_for

    wait_for(lambda: len(children()) >= 2, "the call started its coding workers")  # a state, not a time
    workers = children()
    os.kill(call.pid, signal.SIGKILL)
    call.wait()
    wait_for(lambda: not [pid for pid in workers if Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)],
             "every coding worker gone after the call was killed", limit_s=60)


def _short_call_digest(_: int) -> str:
    result = run_emulated_call(CallConfig(profile=get_profile("gen1"), **{**CALL, "duration_s": 2.0}))
    return result.digest.sha256


def test_a_virtual_call_runs_inside_a_daemonic_pool_worker():
    """multiprocessing.Pool workers are daemonic and may not fork children: the call encodes inline there
    (same call, same digest). A spawned pool: forking this many-threaded test process is itself unsafe."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        in_pool = pool.map(_short_call_digest, [0])[0]
    assert in_pool == _short_call_digest(0)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_another_seed_gives_another_call(reference_call):
    other = run_emulated_call(CallConfig(profile=get_profile("gen1"), **{**CALL, "seed": 8}))
    assert other.digest.sha256 != reference_call.digest.sha256


# --------------------------------------------------------------------------------------------------
# Wall-clock reads in aiortc / aioice
# --------------------------------------------------------------------------------------------------


def test_no_new_wall_clock_read_in_aiortc_or_aioice():
    """Every time.time/monotonic/perf_counter and datetime.now/utcnow in the installed sources is in the
    allow-list (patched in virtual time, or harmless and why). A new aiortc/aioice release that adds a
    read fails here: route it to the loop clock in emulators.virtual_time, then list it."""
    found = scan_wall_clock_reads()
    expected = {key: count for key, (count, _) in WALL_CLOCK_READS.items()}
    new = {k: v for k, v in found.items() if expected.get(k) != v}
    gone = {k: v for k, v in expected.items() if k not in found}
    assert not new and not gone, f"wall-clock reads changed: new/changed {new}, gone {gone}"


def test_patched_reads_follow_the_loop_clock():
    """The allow-list entries marked 'patched' are patched: inside deterministic_aiortc their clocks read
    the loop's time, and everything is restored afterwards."""
    import importlib

    import aiortc.clock

    patched_files = {f for (f, _), (_, why) in WALL_CLOCK_READS.items() if why.startswith("patched")}
    assert patched_files == {"aiortc/clock.py"} | {f"aiortc/{m}.py" for m in TIME_PATCHED_MODULES}
    loop = VirtualClockLoop(start_s=0.0)
    try:
        loop._virtual_now_s = 1234.5
        with deterministic_aiortc(loop, seed=1):
            t_epoch = aiortc.clock.current_datetime().timestamp()
            for name in TIME_PATCHED_MODULES:
                module = importlib.import_module(f"aiortc.{name}")
                assert module.time.time() == pytest.approx(t_epoch, abs=1e-6)
            loop._virtual_now_s += 10.0
            assert aiortc.clock.current_datetime().timestamp() == pytest.approx(t_epoch + 10.0, abs=1e-6)
        for name in TIME_PATCHED_MODULES:
            assert importlib.import_module(f"aiortc.{name}").time is time
        assert abs(aiortc.clock.current_datetime().timestamp() - time.time()) < 5.0
    finally:
        loop.close()
