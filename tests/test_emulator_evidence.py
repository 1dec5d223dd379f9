"""Evidence of a call (issue 14): pcap files of what each side sent and received, with the emulated
timestamps, that dpkt (and tshark, when installed) read back; the data channel's SCTP in clear; the
per-packet CSV of queue delay and drops; a plot that shades outages. Capturing changes nothing in the call."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess

import dpkt
import pytest

from emulators.call import run_emulated_call
from emulators.config import CallConfig
from emulators.evidence import PACKET_COLUMNS
from emulators.output import write_call_result
from emulators.virtual_time import VIRTUAL_EPOCH

CALL = {"duration_s": 4.0, "scan_kb": 8.0, "print_kb": 8.0, "documents_at_s": 0.5, "seed": 3, "clock": "virtual",
        "outages": ((2.0, 2.5),), "compute_ssim": False}


@pytest.fixture(scope="module")
def captured(tmp_path_factory):
    result = run_emulated_call(CallConfig(**CALL), capture=True)
    out = tmp_path_factory.mktemp("call")
    write_call_result(result, out, plot=True, pcap_dir=out / "pcap")
    return result, out


def _chunk_types(packet: bytes) -> list[int]:
    """Chunk types of an SCTP packet (RFC 9260: 12-byte common header, chunks padded to 4 bytes)."""
    types, i = [], 12
    while i + 4 <= len(packet):
        length = int.from_bytes(packet[i + 2:i + 4], "big")
        types.append(packet[i])
        i += max(4, (length + 3) // 4 * 4)
    return types


def _read(path):
    with open(path, "rb") as handle:
        return [(ts, dpkt.ethernet.Ethernet(buf)) for ts, buf in dpkt.pcap.Reader(handle)]


def test_pcaps_hold_what_each_side_sent_and_received_at_the_emulated_times(captured):
    result, out = captured
    up, down = result.packets.logs["up"], result.packets.logs["down"]
    kiosk = _read(out / "pcap" / "kiosk.pcap")
    agent = _read(out / "pcap" / "agent.pcap")
    kiosk_ip = result.packets.kiosk_addr[0]
    sent = [(ts, f) for ts, f in kiosk if dpkt.utils.inet_to_str(f.data.src) == kiosk_ip]
    received = [(ts, f) for ts, f in kiosk if dpkt.utils.inet_to_str(f.data.dst) == kiosk_ip]
    assert len(sent) == len(up) and len(received) == sum(d == d for d in down.delivery_s)
    assert len(agent) == sum(d == d for d in up.delivery_s) + len(down)
    epoch = VIRTUAL_EPOCH.timestamp()
    assert [float(ts) for ts, _ in sent] == pytest.approx([epoch + a for a in up.arrival_s], abs=1e-6)
    times = [float(ts) for ts, _ in kiosk]
    assert times == sorted(times)
    first = sent[0][1]
    assert isinstance(first.data.data, dpkt.udp.UDP) and bytes(first.data.data.data) == up.data[0]
    assert first.data.data.sport == result.packets.kiosk_addr[1]


def test_the_data_channel_is_in_clear_as_sctp_over_udp(captured):
    _, out = captured
    frames = _read(out / "pcap" / "kiosk-sctp.pcap")
    chunks = []
    for _, frame in frames:
        udp = frame.data.data
        assert udp.sport == udp.dport == 9899
        chunks.extend(_chunk_types(bytes(udp.data)))
    assert dpkt.sctp.INIT in chunks and dpkt.sctp.DATA in chunks and dpkt.sctp.SACK in chunks
    assert (out / "pcap" / "dtls-keys.log").read_text().startswith("CLIENT_RANDOM ")


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_opens_them(captured):
    _, out = captured
    stats = subprocess.run(["tshark", "-r", str(out / "pcap" / "kiosk.pcap"), "-o", "rtp.heuristic_rtp:TRUE",
                            "-q", "-z", "io,phs"], capture_output=True, text=True, check=True).stdout
    for protocol in ("stun", "dtls", "rtp", "srtcp"):
        assert protocol in stats, stats
    sctp = subprocess.run(["tshark", "-r", str(out / "pcap" / "agent-sctp.pcap"), "-q", "-z", "io,phs"],
                          capture_output=True, text=True, check=True).stdout
    assert "sctp" in sctp and "rtcdc" in sctp


def test_packets_csv_gives_each_packets_queue_delay_or_drop(captured):
    result, out = captured
    rows = list(csv.DictReader(io.StringIO((out / "packets.csv").read_text())))
    assert tuple(rows[0]) == PACKET_COLUMNS
    assert len(rows) == result.network.up.packets_in + result.network.down.packets_in
    outage = [r for r in rows if r["drop"] == "outage"]
    assert outage and all(float(r["arrival_s"]) < 2.5 for r in outage)  # queued into the outage, or in it
    delivered = [r for r in rows if not r["drop"]]
    assert all(float(r["one_way_delay_ms"]) >= float(r["queue_delay_ms"]) >= 0 for r in delivered)
    assert (out / "timeseries.png").stat().st_size > 10_000


def test_capturing_changes_nothing_in_the_call(captured):
    result, _ = captured
    plain = run_emulated_call(CallConfig(**CALL))
    assert plain.digest == result.digest
    assert json.dumps(plain.deterministic_dict(), sort_keys=True) == json.dumps(result.deterministic_dict(),
                                                                                 sort_keys=True)
