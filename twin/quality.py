"""Quality of an interview from the ADSL lines it ran on and the encoder profile.

Pure module (no SimPy, no asyncio, no printing, no file: :func:`twin.datafiles.read_calibration_csv`
reads a calibration CSV into a :class:`CalibrationTable`).

Two implementations of :class:`QualityModel`:

* :class:`OpinionQualityModel` (default) - derives the operating point (video bitrate, frame rate,
  loss, delay) from :class:`twin.line.AdslLine` and :class:`twin.profiles.EncoderProfile`, then scores
  video with ITU-T G.1070's video-quality function and speech with the ITU-T G.107 E-model.
* :class:`CalibrationTable` - measured operating points and scores written by the emulator
  (``twin calibrate``), looked up per profile and line. The opinion models are defaults; the
  emulator's measurements should calibrate or replace them (docs/facts.md, "Quality models").

Provenance: no copy of the ITU texts was at hand. The G.1070 video formula and coefficient sets and
the G.107 equations used here are those of docs/facts.md, which rest on public implementations that agree
with each other; the reference values in the tests (G.1070 9.2-inch set at 384 kbit/s and 15 fps ->
3.282; G.107 default R = 93.2062, MOS(90) = 4.34, G.711 with PLC at 1 % loss and Ta = 150 ms ->
R = 89.40) are reproduced exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from twin.errors import TwinInputError
from twin.line import AdslLine, Direction, atm_wire_bytes
from twin.profiles import EncoderProfile

if TYPE_CHECKING:
    from twin.scenario.spec import LoadedScenario

__all__ = [
    "CALIBRATION_COLUMNS",
    "EMODEL_DEFAULT_IDLE",
    "EMODEL_DEFAULT_IS",
    "EMODEL_DEFAULT_RO",
    "G1070_H264_BASELINE_VGA_6_INCH",
    "G1070_H264_VGA_9_2_INCH",
    "G1070_MPEG4_QQVGA_2_1_INCH",
    "G1070_MPEG4_QVGA_4_2_INCH",
    "CalibrationRow",
    "CalibrationTable",
    "G1070Coefficients",
    "InterviewQuality",
    "OpinionQualityModel",
    "QualityModel",
    "emodel_delay_impairment",
    "emodel_effective_equipment_impairment",
    "emodel_rating",
    "g1070_video_quality",
    "opus_impairment",
    "quality_for_scenario",
    "r_to_mos",
]

# --------------------------------------------------------------------------------------------------
# ITU-T G.1070 video quality
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class G1070Coefficients:
    """Coefficients v1..v12 of the ITU-T G.1070 video-quality function (one set per codec, format
    and display size)."""

    name: str
    v1: float
    v2: float
    v3: float
    v4: float
    v5: float
    v6: float
    v7: float
    v8: float
    v9: float
    v10: float
    v11: float
    v12: float


G1070_H264_VGA_9_2_INCH = G1070Coefficients(
    "H.264 VGA, 9.2-inch", 5.517, 1.29e-2, 3.459, 178.53, 1.02, 1.15, 3.55e-4, 0.114, 513.77, 0.736, -6.451, 13.684
)
"""G.1070 set for H.264 VGA on a 9.2-inch display (docs/facts.md; found in two or more public sources).
Default of :class:`OpinionQualityModel`: the kiosks' "high-resolution screen" is the largest display of
the four sets; no VP8 set exists, so VP8 is scored with it too (ASSUMPTION)."""

G1070_H264_BASELINE_VGA_6_INCH = G1070Coefficients(
    "H.264 baseline VGA, 6-inch", 6.743, 0.9998e-2, 3.051, 168.1, 1.766, 1.130, 18.340e-4, 1.232, 53.25, 3.353,
    6.025, 80.752,
)
"""G.1070 set for H.264 baseline VGA, 6-inch display (docs/facts.md)."""

G1070_MPEG4_QVGA_4_2_INCH = G1070Coefficients(
    "MPEG-4 QVGA, 4.2-inch", 1.431, 2.228e-2, 3.759, 184.1, 1.161, 1.446, 3.881e-4, 2.116, 467.4, 2.736, 15.28, 4.170
)
"""G.1070 set for MPEG-4 QVGA, 4.2-inch display (docs/facts.md)."""

G1070_MPEG4_QQVGA_2_1_INCH = G1070Coefficients(
    "MPEG-4 QQVGA, 2.1-inch", 7.160, 2.215e-2, 3.461, 111.9, 2.091, 1.382, 5.881e-4, 0.8401, 113.9, 6.047, 46.87,
    10.87,
)
"""G.1070 set for MPEG-4 QQVGA, 2.1-inch display (docs/facts.md)."""

_DPPLV_FLOOR = 1e-6


def g1070_video_quality(
    bitrate_kbps: float,
    frame_rate_fps: float,
    packet_loss_pct: float,
    coefficients: G1070Coefficients = G1070_H264_VGA_9_2_INCH,
) -> float:
    """ITU-T G.1070 video quality Vq (MOS scale 1-5) as given in docs/facts.md::

        Ofr    = v1 + v2 Br
        IOfr   = v3 - v3 / (1 + (Br / v4)^v5)
        DFrV   = v6 + v7 Br
        Icoding = IOfr exp(-(ln Fr - ln Ofr)^2 / (2 DFrV^2))
        DPplV  = v10 + v11 exp(-Fr / v8) + v12 exp(-Br / v9)
        Vq     = 1 + Icoding exp(-Ppl / DPplV)

    Args:
        bitrate_kbps: Br, video bitrate, kbit/s (>= 0).
        frame_rate_fps: Fr, frames/s (>= 0). Zero bitrate or frame rate gives Vq = 1 (no video).
        packet_loss_pct: Ppl, packet loss, % (0-100).
        coefficients: a :class:`G1070Coefficients` set.

    Returns:
        Vq clipped to [1, 5]. Outside the fitted range DPplV can be <= 0 (e.g. the 9.2-inch set below
        ~0.3 fps at high bitrate); it is floored at 1e-6 so that any loss drives Vq to 1.

    Raises:
        ValueError: negative inputs or loss above 100 %.
    """
    br, fr, ppl, c = float(bitrate_kbps), float(frame_rate_fps), float(packet_loss_pct), coefficients
    if br < 0 or fr < 0 or not 0 <= ppl <= 100 or not all(math.isfinite(x) for x in (br, fr, ppl)):
        raise ValueError(f"G.1070 needs Br >= 0, Fr >= 0, 0 <= Ppl <= 100; got {br}, {fr}, {ppl}")
    if br == 0 or fr == 0:
        return 1.0
    ofr = c.v1 + c.v2 * br
    iofr = c.v3 - c.v3 / (1.0 + (br / c.v4) ** c.v5)
    dfrv = c.v6 + c.v7 * br
    icoding = iofr * math.exp(-((math.log(fr) - math.log(ofr)) ** 2) / (2.0 * dfrv**2))
    dpplv = c.v10 + c.v11 * math.exp(-fr / c.v8) + c.v12 * math.exp(-br / c.v9)
    dpplv = max(dpplv, _DPPLV_FLOOR)
    vq = 1.0 + icoding * math.exp(-ppl / dpplv)
    return min(5.0, max(1.0, vq))


# --------------------------------------------------------------------------------------------------
# ITU-T G.107 E-model
# --------------------------------------------------------------------------------------------------

EMODEL_DEFAULT_RO = 94.769
"""Basic signal-to-noise ratio Ro with G.107 default parameters (docs/facts.md)."""

EMODEL_DEFAULT_IS = 1.414
"""Simultaneous impairment Is with G.107 default parameters (docs/facts.md)."""

EMODEL_DEFAULT_IDLE = 0.149
"""Listener-echo impairment Idle with G.107 default parameters (docs/facts.md)."""


def emodel_delay_impairment(one_way_delay_ms: float) -> float:
    """Idd of G.107 for absolute mouth-to-ear delay Ta (ms): 0 for Ta <= 100 ms, else with
    X = log2(Ta / 100): ``25 [(1 + X^6)^(1/6) - 3 (1 + (X/3)^6)^(1/6) + 2]``."""
    ta = float(one_way_delay_ms)
    if ta <= 100.0:
        return 0.0
    x = math.log2(ta / 100.0)
    return 25.0 * ((1.0 + x**6) ** (1.0 / 6.0) - 3.0 * (1.0 + (x / 3.0) ** 6) ** (1.0 / 6.0) + 2.0)


def emodel_effective_equipment_impairment(packet_loss_pct: float, ie: float, bpl: float, burst_r: float = 1.0) -> float:
    """Ie,eff = Ie + (95 - Ie) Ppl / (Ppl / BurstR + Bpl) (G.107). BurstR = 1 for random loss."""
    ppl = float(packet_loss_pct)
    if ppl <= 0:
        return float(ie)
    return ie + (95.0 - ie) * ppl / (ppl / burst_r + bpl)


def emodel_rating(
    one_way_delay_ms: float,
    packet_loss_pct: float,
    ie: float,
    bpl: float,
    burst_r: float = 1.0,
    *,
    ro: float = EMODEL_DEFAULT_RO,
    is_: float = EMODEL_DEFAULT_IS,
    idle: float = EMODEL_DEFAULT_IDLE,
    idte: float = 0.0,
    advantage: float = 0.0,
) -> float:
    """Transmission rating R of the ITU-T G.107 E-model: ``R = Ro - Is - Id - Ie,eff + A`` with
    ``Id = Idte + Idle + Idd``.

    Echo convention (CHOICE): **no echo path** - talker echo is taken as fully cancelled (headsets or
    echo cancellers at both ends), so ``idte`` defaults to 0 and only Idd depends on delay. The
    alternatives (T = Ta, or T = Ta with Tr = 2 Ta) would lower MOS by about 0.1-0.15 (docs/facts.md).
    Default-parameter terms Ro, Is, Idle as in docs/facts.md; with zero delay, zero loss and Ie = 0 this
    gives R = 93.2062.

    Args:
        one_way_delay_ms: Ta, absolute mouth-to-ear delay, ms.
        packet_loss_pct: Ppl, %.
        ie: equipment impairment of the codec (G.711 0, G.729A+VAD 11; Opus: see :func:`opus_impairment`).
        bpl: packet-loss robustness (G.711 4.3 without PLC, 25.1 with PLC; G.729A+VAD 19.0).
        burst_r: BurstR (1 = random loss, > 1 bursty).
        ro, is_, idle, idte: E-model terms (defaults: G.107 default parameters, no echo path).
        advantage: advantage factor A (0).

    Raises:
        ValueError: negative delay or loss outside [0, 100].
    """
    if one_way_delay_ms < 0 or not 0 <= packet_loss_pct <= 100:
        raise ValueError(f"E-model needs delay >= 0 and 0 <= loss <= 100; got {one_way_delay_ms}, {packet_loss_pct}")
    id_ = idte + idle + emodel_delay_impairment(one_way_delay_ms)
    ie_eff = emodel_effective_equipment_impairment(packet_loss_pct, ie, bpl, burst_r)
    return ro - is_ - id_ - ie_eff + advantage


def r_to_mos(r: float) -> float:
    """G.107 conversion: MOS = 1 + 0.035 R + 7e-6 R (R - 60)(100 - R); 1 for R <= 0, 4.5 for R >= 100.

    The polynomial dips just below 1 for 0 < R < 6.5 (minimum 0.99 near R = 3); the result is clipped
    to 1 there so that MOS is non-decreasing in R."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return max(1.0, 1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r))


OPUS_IE_AT_8_KBPS = 11.0
"""Ie assumed for Opus at <= 8 kbit/s: that of G.729A (docs/facts.md). ASSUMPTION - no ITU value exists."""

OPUS_IE_ZERO_FROM_KBPS = 32.0
"""Opus bitrate from which Ie = 0 (as G.711) is assumed; linear in between. ASSUMPTION."""

OPUS_BPL = 25.1
"""Bpl assumed for Opus: that of G.711 with packet-loss concealment (docs/facts.md). ASSUMPTION."""


def opus_impairment(audio_kbps: float) -> tuple[float, float]:
    """(Ie, Bpl) used for Opus at ``audio_kbps``. ASSUMPTION throughout: ITU-T publishes no Ie/Bpl for
    Opus. Ie = :data:`OPUS_IE_AT_8_KBPS` at <= 8 kbit/s, falling linearly to 0 at
    :data:`OPUS_IE_ZERO_FROM_KBPS`; Bpl = :data:`OPUS_BPL`. Opus 16 kbit/s -> Ie 7.33."""
    if audio_kbps >= OPUS_IE_ZERO_FROM_KBPS:
        return 0.0, OPUS_BPL
    if audio_kbps <= 8.0:
        return OPUS_IE_AT_8_KBPS, OPUS_BPL
    frac = (OPUS_IE_ZERO_FROM_KBPS - audio_kbps) / (OPUS_IE_ZERO_FROM_KBPS - 8.0)
    return OPUS_IE_AT_8_KBPS * frac, OPUS_BPL


# --------------------------------------------------------------------------------------------------
# Results and protocol
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InterviewQuality:
    """Quality of one interview (kiosk <-> agent) and the operating point it was scored at.

    "up" is citizen -> agent (the kiosk's uplink, the bottleneck), "down" agent -> citizen.

    Attributes:
        video_mos_up: video quality the agent sees (MOS 1-5).
        video_mos_down: video quality the citizen sees (MOS 1-5); None when not measured (calibration).
        speech_mos: speech quality, the worse of the two directions (MOS 1-5).
        mos: the interview score = ``min(video_mos_up, speech_mos)``: the interview fails if the agent
            cannot see the citizen (and the documents shown) or either side cannot hear. CHOICE; G.1070's
            multimedia integration is not used (unverified, docs/facts.md).
        video_kbps_up: video encoder bitrate citizen -> agent, kbit/s.
        frame_rate_fps_up: frames per second reaching the agent.
        loss_pct: packet loss citizen -> agent, % (line loss and queue overflow).
        one_way_delay_ms: one-way network delay citizen -> agent, ms (opinion model: mean delay of a
            speech packet; calibration: measured p95 of the video path).
        source: ``"opinion"`` or ``"calibration:<file>"`` plus how the row was found.
        video_kbps_down, frame_rate_fps_down, loss_pct_down, one_way_delay_ms_down, speech_mos_up,
        speech_mos_down: the same for the other direction / per direction (None when not measured).
    """

    video_mos_up: float
    video_mos_down: float | None
    speech_mos: float
    mos: float
    video_kbps_up: float
    frame_rate_fps_up: float
    loss_pct: float
    one_way_delay_ms: float
    source: str = "opinion"
    video_kbps_down: float | None = None
    frame_rate_fps_down: float | None = None
    loss_pct_down: float | None = None
    one_way_delay_ms_down: float | None = None
    speech_mos_up: float | None = None
    speech_mos_down: float | None = None


@runtime_checkable
class QualityModel(Protocol):
    """Anything that scores an interview from the two lines and the encoder profile (one per call:
    both ends use it)."""

    def score(self, kiosk_line: AdslLine, agent_line: AdslLine, profile: EncoderProfile) -> InterviewQuality:
        """The quality of an interview between a kiosk on ``kiosk_line`` and an agent on ``agent_line``,
        both ends sending ``profile``."""
        ...


# --------------------------------------------------------------------------------------------------
# Opinion model
# --------------------------------------------------------------------------------------------------


AUDIO_PACKET_OVERHEAD_BYTES = 58
"""IPv4 20 + UDP 8 + RTP 12 + RTP header extensions 8 (aiortc audio: sdes:mid + ssrc-audio-level, one-byte
form) + SRTP auth tag 10 (AES_CM_128_HMAC_SHA1_80)."""

VIDEO_PACKET_OVERHEAD_BYTES = 62
"""IPv4 20 + UDP 8 + RTP 12 + RTP header extensions 12 (aiortc video: sdes:mid + abs-send-time) + SRTP 10."""

VIDEO_MAX_RTP_PAYLOAD_BYTES = 1300
"""aiortc's ``PACKET_MAX`` (``codecs/vpx.py``, ``codecs/h264.py``): RTP payload per video packet, codec
payload descriptor included (its bytes are ignored here: a few bytes per packet)."""

DEFAULT_UTILIZATION_TARGET = 0.9
"""Fraction of a hop's sync rate the media may fill: the rest is headroom for RTCP, retransmissions and
a delay-based rate controller that settles below capacity. ASSUMPTION."""

ENDPOINT_DELAY_MS = 60.0
"""Mouth-to-ear delay added by the end systems: 20 ms Opus frame + ~6.5 ms look-ahead + ~30 ms jitter
buffer, rounded. ASSUMPTION."""


def _audio_packet_ip_bytes(profile: EncoderProfile) -> int:
    payload = math.ceil(profile.audio_kbps * profile.audio_frame_ms / 8.0)
    return payload + AUDIO_PACKET_OVERHEAD_BYTES


def _video_frame_packets(video_kbps: float, fps: float) -> list[int]:
    """IP sizes of the packets of one video frame at ``video_kbps`` and ``fps``."""
    frame_bytes = max(1, math.ceil(video_kbps * 1000.0 / 8.0 / fps))
    full, rest = divmod(frame_bytes, VIDEO_MAX_RTP_PAYLOAD_BYTES)
    sizes = [VIDEO_MAX_RTP_PAYLOAD_BYTES] * full + ([rest] if rest else [])
    return [s + VIDEO_PACKET_OVERHEAD_BYTES for s in sizes]


@dataclass(frozen=True)
class _Hop:
    line: AdslLine
    direction: Direction

    @property
    def rate_kbps(self) -> float:
        return self.line.sync_rate_kbps(self.direction)

    def wire_kbps(self, packet_ip_bytes: list[int], packets_per_s: float) -> float:
        enc = self.line.encapsulation
        return sum(atm_wire_bytes(b, enc) for b in packet_ip_bytes) * 8.0 * packets_per_s / 1000.0


@dataclass(frozen=True)
class _PathPoint:
    video_kbps: float
    frame_rate_fps: float
    loss_pct: float
    network_delay_ms: float
    video_mos: float
    speech_mos: float


class OpinionQualityModel:
    """Default quality model: operating point from the lines and the profile, then G.1070 + E-model.

    For each direction (citizen -> agent over the kiosk's UP and the agent's DOWN hop; agent -> citizen
    over the agent's UP and the kiosk's DOWN hop), with the same profile at both ends:

    1. **Packets.** Opus: one packet per 20 ms of ``audio_kbps * 20 / 8`` bytes + 58 bytes of headers.
       Video: each frame (``video_kbps / fps`` bits) split into 1300-byte RTP payloads + 62 bytes of
       headers. Each packet pays the hop's ATM cell tax (:func:`twin.line.atm_wire_bytes`).
    2. **Bitrate.** The largest video bitrate whose wire rate, added to the audio's, stays within
       ``utilization_target`` x sync rate on every hop; the encoder then runs at
       ``min(profile.video_max_kbps, that)`` and at the profile frame rate.
    3. **Collapse.** If even ``profile.video_min_kbps`` does not fit, the encoder stays at its minimum
       (aiortc never goes below) and, if audio + video exceed a hop's sync rate, the queue overflows:
       the hop drops ``d = 1 - rate / offered`` of all packets (audio and video alike), its buffer
       stays full (delay += buffer drain time), and a frame survives only if all its packets do, so
       the frame rate falls to ``fps * (1 - d)^packets_per_frame``. This is optimistic: real decoders
       also lose the frames that reference a lost one (docs/facts.md measured 0.2-1 fps for stock aiortc
       at 128 kbit/s where this gives more).
    4. **Loss** = 1 - prod(1 - line loss) x prod(1 - d) over the hops.
    5. **Delay** (network, one way) = sum over hops of fixed delay (interleaving + propagation) +
       serialization of an audio packet + waiting behind video: ``rho_v * B / 2`` (rho_v the hop's
       video utilization, B the wire time of one frame burst; a residual-time approximation), or the
       full-buffer drain when overflowing. Speech uses ``network + ENDPOINT_DELAY_MS`` as Ta.
    6. **Scores.** Video: :func:`g1070_video_quality` (``coefficients``, default the 9.2-inch H.264
       VGA set) at the encoder bitrate, delivered frame rate and loss. Speech: E-model with
       :func:`opus_impairment` (ASSUMPTION), random loss (BurstR = 1), no echo path.
       ``mos = min(video_mos_up, speech_mos)``, speech_mos being the worse direction.

    Args:
        coefficients: G.1070 coefficient set.
        utilization_target: see :data:`DEFAULT_UTILIZATION_TARGET`.
        endpoint_delay_ms: see :data:`ENDPOINT_DELAY_MS`.
    """

    def __init__(
        self,
        coefficients: G1070Coefficients = G1070_H264_VGA_9_2_INCH,
        utilization_target: float = DEFAULT_UTILIZATION_TARGET,
        endpoint_delay_ms: float = ENDPOINT_DELAY_MS,
    ) -> None:
        if not 0 < utilization_target <= 1:
            raise TwinInputError(f"utilization_target must be in (0, 1], got {utilization_target!r}")
        if not endpoint_delay_ms >= 0:
            raise TwinInputError(f"endpoint_delay_ms must be >= 0, got {endpoint_delay_ms!r}")
        self.coefficients = coefficients
        self.utilization_target = float(utilization_target)
        self.endpoint_delay_ms = float(endpoint_delay_ms)

    # -- operating point ----------------------------------------------------------------------

    def _video_cap_kbps(self, hop: _Hop, profile: EncoderProfile, audio_wire_kbps: float) -> float:
        """Largest video bitrate (kbit/s, <= profile max) fitting the hop's budget; 0 if none."""
        budget = self.utilization_target * hop.rate_kbps - audio_wire_kbps
        fps = profile.frame_rate_fps

        def fits(v: float) -> bool:
            return hop.wire_kbps(_video_frame_packets(v, fps), fps) <= budget

        hi = profile.video_max_kbps
        if fits(hi):
            return hi
        lo = 0.0
        if budget <= 0:
            return 0.0
        for _ in range(50):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if fits(mid) else (lo, mid)
        return lo

    def operating_point(self, sender: AdslLine, receiver: AdslLine, profile: EncoderProfile) -> _PathPoint:
        """Operating point and scores of one direction, from ``sender``'s uplink to ``receiver``'s
        downlink."""
        hops = (_Hop(sender, Direction.UP), _Hop(receiver, Direction.DOWN))
        fps = profile.frame_rate_fps
        audio_pkt = _audio_packet_ip_bytes(profile)
        audio_pps = 1000.0 / profile.audio_frame_ms
        audio_wire = [h.wire_kbps([audio_pkt], audio_pps) for h in hops]
        cap = min(self._video_cap_kbps(h, profile, a) for h, a in zip(hops, audio_wire))
        video_kbps = min(profile.video_max_kbps, max(cap, profile.video_min_kbps))
        frame_pkts = _video_frame_packets(video_kbps, fps)

        delivered = 1.0  # fraction of packets surviving queue overflow
        line_ok = 1.0
        delay_ms = 0.0
        offered_scale = 1.0  # upstream overflow thins the stream offered to later hops
        for hop, a_wire in zip(hops, audio_wire):
            v_wire = hop.wire_kbps(frame_pkts, fps)
            offered = (a_wire + v_wire) * offered_scale
            rate = hop.rate_kbps
            line = hop.line
            delay_ms += line.fixed_delay_ms(hop.direction) + line.serialization_time_s(hop.direction, audio_pkt) * 1e3
            if offered > rate:
                d = 1.0 - rate / offered
                delay_ms += line.buffer_bytes(hop.direction) * 8.0 / rate  # bytes*8/kbps = ms
            else:
                d = 0.0
                burst_ms = sum(atm_wire_bytes(b, line.encapsulation) for b in frame_pkts) * 8.0 / rate
                rho_v = v_wire * offered_scale / rate
                delay_ms += rho_v * burst_ms / 2.0
            delivered *= 1.0 - d
            offered_scale *= 1.0 - d
            line_ok *= 1.0 - line.loss_pct / 100.0
        loss_pct = 100.0 * (1.0 - line_ok * delivered)
        frame_ok = (line_ok * delivered) ** len(frame_pkts) if delivered < 1.0 else 1.0
        frame_rate = fps * frame_ok
        video_mos = g1070_video_quality(video_kbps, frame_rate, loss_pct, self.coefficients)
        ie, bpl = opus_impairment(profile.audio_kbps)
        r = emodel_rating(delay_ms + self.endpoint_delay_ms, loss_pct, ie, bpl)
        return _PathPoint(video_kbps, frame_rate, loss_pct, delay_ms, video_mos, r_to_mos(r))

    def score(self, kiosk_line: AdslLine, agent_line: AdslLine, profile: EncoderProfile) -> InterviewQuality:
        """Score an interview; see the class docstring for the model."""
        up = self.operating_point(kiosk_line, agent_line, profile)
        down = self.operating_point(agent_line, kiosk_line, profile)
        speech = min(up.speech_mos, down.speech_mos)
        return InterviewQuality(
            video_mos_up=up.video_mos,
            video_mos_down=down.video_mos,
            speech_mos=speech,
            mos=min(up.video_mos, speech),
            video_kbps_up=up.video_kbps,
            frame_rate_fps_up=up.frame_rate_fps,
            loss_pct=up.loss_pct,
            one_way_delay_ms=up.network_delay_ms,
            source="opinion",
            video_kbps_down=down.video_kbps,
            frame_rate_fps_down=down.frame_rate_fps,
            loss_pct_down=down.loss_pct,
            one_way_delay_ms_down=down.network_delay_ms,
            speech_mos_up=up.speech_mos,
            speech_mos_down=down.speech_mos,
        )


# --------------------------------------------------------------------------------------------------
# Calibration table
# --------------------------------------------------------------------------------------------------

CALIBRATION_COLUMNS: tuple[str, ...] = (
    "profile", "line", "up_kbps", "down_kbps", "loss_pct", "video_fps_up", "video_kbps_up",
    "freezes_per_min_up", "delay_p95_ms_up", "psnr_db_up", "ssim_up", "speech_loss_pct", "mos_video_up",
    "mos_speech", "mos",
)
"""Columns of a calibration CSV, in the order ``twin calibrate`` writes them."""

_OPTIONAL_COLUMNS = frozenset({"freezes_per_min_up", "delay_p95_ms_up", "psnr_db_up", "ssim_up"})
_MOS_COLUMNS = frozenset({"mos_video_up", "mos_speech", "mos"})
_PCT_COLUMNS = frozenset({"loss_pct", "speech_loss_pct"})
_NUMERIC_COLUMNS = tuple(c for c in CALIBRATION_COLUMNS if c not in ("profile", "line"))


@dataclass(frozen=True)
class CalibrationRow:
    """One measured operating point (see :class:`CalibrationTable` for the meaning of each column)."""

    profile: str
    line: str
    up_kbps: float
    down_kbps: float
    loss_pct: float
    video_fps_up: float
    video_kbps_up: float
    freezes_per_min_up: float
    delay_p95_ms_up: float
    psnr_db_up: float
    ssim_up: float
    speech_loss_pct: float
    mos_video_up: float
    mos_speech: float
    mos: float


class CalibrationTable:
    """Measured interview quality per encoder profile and emulated line (the emulator's
    ``twin calibrate`` output); implements :class:`QualityModel`.

    CSV format: a header row with (at least) these columns, one row per emulated call, comma-separated,
    ``.`` decimal point:

    ============== =========================================================================
    profile        encoder profile name (:data:`twin.profiles.PROFILES`), e.g. ``gen1``
    line           line label: the kiosk line's offer name (:data:`twin.line.OFFERS`) when the
                   emulated uplink is that offer, else any label
    up_kbps        uplink (kiosk -> network) sync rate emulated, kbit/s of ATM wire (> 0)
    down_kbps      downlink sync rate emulated, kbit/s (> 0)
    loss_pct       random loss configured on the emulated line, % (0-100)
    video_fps_up   frames/s rendered at the agent
    video_kbps_up  video bitrate received at the agent, kbit/s
    freezes_per_min_up  W3C webrtc-stats freezes per minute at the agent
    delay_p95_ms_up     95th percentile one-way frame delay kiosk -> agent, ms
    psnr_db_up     mean PSNR at the agent, dB
    ssim_up        mean SSIM at the agent (0-1)
    speech_loss_pct  audio packet loss kiosk -> agent, %
    mos_video_up   video MOS at the agent (1-5)
    mos_speech     speech MOS (1-5)
    mos            interview MOS (1-5)
    ============== =========================================================================

    The four measurement columns ``freezes_per_min_up``, ``delay_p95_ms_up``, ``psnr_db_up``,
    ``ssim_up`` may be empty or ``nan`` (not measured); every other numeric cell must be a finite
    number >= 0 (MOS in [1, 5], percentages <= 100).

    Lookup (:meth:`score`): among the rows of the profile, those whose ``loss_pct`` is nearest to the
    kiosk line's ``loss_pct`` are kept; then (1) rows whose ``line`` equals the kiosk line's offer
    name are averaged; else (2) the values are interpolated linearly in ``up_kbps`` against the kiosk
    line's uplink sync rate (rows with equal ``up_kbps`` averaged first); outside the measured range
    the nearest measured row is used (clamping: optimistic below the slowest measured uplink,
    pessimistic above the fastest) and ``source`` says ``clamped``. The agent line is not used: it is
    taken to be as good as the one emulated. ``video_mos_down`` is None (not measured).
    """

    def __init__(self, rows: list[CalibrationRow], path: str = "<calibration>") -> None:
        if not rows:
            raise TwinInputError("calibration table has no rows", path=path)
        self.rows = tuple(rows)
        self.path = path

    @classmethod
    def from_records(cls, header: list[str], records: Iterable[tuple[int, Mapping[str, str | None]]],
                     path: str = "<calibration>") -> CalibrationTable:
        """A table from CSV records already read (:func:`twin.datafiles.read_calibration_csv` reads the
        file): the header's column names, then (line number, {column: text}) per row.

        Raises:
            TwinInputError: missing columns, or a bad value (naming the file, the row's line number, the
            column and the value).
        """
        missing = [c for c in CALIBRATION_COLUMNS if c not in header]
        if missing:
            raise TwinInputError(f"missing column(s) {', '.join(missing)}; expected {', '.join(CALIBRATION_COLUMNS)}",
                                 path=path)
        return cls([cls._parse_row(raw, line_num, path) for line_num, raw in records], path=path)

    @staticmethod
    def _parse_row(raw: Mapping[str, str | None], line_num: int, path: str) -> CalibrationRow:
        values: dict[str, object] = {}
        for col in ("profile", "line"):
            text = (raw.get(col) or "").strip()
            if not text:
                raise TwinInputError(f"row at line {line_num}, column {col}: empty value", path=path)
            values[col] = text
        for col in _NUMERIC_COLUMNS:
            text = (raw.get(col) or "").strip()
            if col in _OPTIONAL_COLUMNS and text.lower() in ("", "nan"):
                values[col] = math.nan
                continue
            try:
                v = float(text)
            except ValueError:
                raise TwinInputError(f"row at line {line_num}, column {col}: not a number: {text!r}", path=path) from None
            ok = math.isfinite(v) and v >= 0
            if col in _MOS_COLUMNS:
                ok = ok and 1.0 <= v <= 5.0
            if col in _PCT_COLUMNS:
                ok = ok and v <= 100.0
            if col in ("up_kbps", "down_kbps"):
                ok = ok and v > 0
            if not ok:
                raise TwinInputError(f"row at line {line_num}, column {col}: value out of range: {text!r}", path=path)
            values[col] = v
        return CalibrationRow(**values)  # type: ignore[arg-type]

    @property
    def profiles(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.profile for r in self.rows))

    def score(self, kiosk_line: AdslLine, agent_line: AdslLine, profile: EncoderProfile) -> InterviewQuality:
        """Measured quality for ``profile`` on ``kiosk_line`` (lookup rule in the class docstring).

        Raises:
            TwinInputError: no row for the profile (listing the profiles present).
        """
        rows = [r for r in self.rows if r.profile == profile.name]
        if not rows:
            raise TwinInputError(
                f"no calibration rows for profile {profile.name!r}; profiles present: {', '.join(self.profiles)}",
                path=self.path,
            )
        best_loss = min(abs(r.loss_pct - kiosk_line.loss_pct) for r in rows)
        rows = [r for r in rows if abs(r.loss_pct - kiosk_line.loss_pct) == best_loss]
        exact = [r for r in rows if r.line == kiosk_line.offer.name]
        if exact:
            values = _mean_rows(exact)
            how = f"line {kiosk_line.offer.name}"
        else:
            values, how = _interpolate(rows, kiosk_line.sync_rate_up_kbps)
        return InterviewQuality(
            video_mos_up=values["mos_video_up"],
            video_mos_down=None,
            speech_mos=values["mos_speech"],
            mos=values["mos"],
            video_kbps_up=values["video_kbps_up"],
            frame_rate_fps_up=values["video_fps_up"],
            loss_pct=values["speech_loss_pct"],
            one_way_delay_ms=values["delay_p95_ms_up"],
            source=f"calibration:{self.path} ({how})",
        )


def _mean_rows(rows: list[CalibrationRow]) -> dict[str, float]:
    return {c: sum(getattr(r, c) for r in rows) / len(rows) for c in _NUMERIC_COLUMNS}


def _interpolate(rows: list[CalibrationRow], up_kbps: float) -> tuple[dict[str, float], str]:
    by_rate: dict[float, list[CalibrationRow]] = {}
    for r in rows:
        by_rate.setdefault(r.up_kbps, []).append(r)
    rates = sorted(by_rate)
    points = [_mean_rows(by_rate[x]) for x in rates]
    if up_kbps <= rates[0]:
        return points[0], f"clamped to up_kbps {rates[0]:g}" if up_kbps < rates[0] else f"up_kbps {rates[0]:g}"
    if up_kbps >= rates[-1]:
        return points[-1], f"clamped to up_kbps {rates[-1]:g}" if up_kbps > rates[-1] else f"up_kbps {rates[-1]:g}"
    i = next(k for k in range(1, len(rates)) if rates[k] >= up_kbps)
    x0, x1 = rates[i - 1], rates[i]
    w = (up_kbps - x0) / (x1 - x0)
    mixed = {c: (1 - w) * points[i - 1][c] + w * points[i][c] for c in _NUMERIC_COLUMNS}
    return mixed, f"interpolated up_kbps {x0:g}-{x1:g}"


def quality_for_scenario(loaded: LoadedScenario) -> QualityModel:
    """The scenario's quality model: the calibration table it names (read with the scenario), else the
    default :class:`OpinionQualityModel`."""
    if loaded.spec.quality.model == "calibration" and loaded.calibration is not None:
        return loaded.calibration
    return OpinionQualityModel()
