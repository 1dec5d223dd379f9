"""Quality of an interview from the ADSL lines it ran on and the encoder profile.

Pure module (no SimPy, no asyncio, no printing, no file: :func:`twin.datafiles.read_calibration_csv`
reads a calibration CSV into a :class:`CalibrationTable`).

Two implementations of :class:`QualityModel`:

* :class:`OpinionQualityModel` (default) - derives the operating point (video bitrate, frame rate,
  loss, delay) from :class:`twin.line.AdslLine` and :class:`twin.profiles.EncoderProfile`, then scores
  video with ITU-T G.1070's video-quality function and speech with the ITU-T G.107 E-model.
* :class:`CalibrationTable` - calls measured by the emulator (``twin calibrate``): per call the frame
  rate, delay, pauses and documents it measured, EvalVid's video MOS of the frames it displayed, and the
  PESQ score of the speech it decoded; scored here (:func:`score_call`): speech with
  :func:`speech_mos` (PESQ less G.107's delay impairment Idd), video with the measured EvalVid MOS, the
  interview with G.1070's multimedia integration of both and the delay (:func:`g1070_multimedia_quality`),
  an *interview usable* verdict (:class:`UsableCriteria`). Looked up per profile and line; a line not
  measured is refused, never clamped.

Provenance: no copy of the ITU texts was at hand. The G.1070 video formula and coefficient sets and
the G.107 equations used here are those of docs/facts.md, which rest on public implementations that agree
with each other; the reference values in the tests (G.1070 9.2-inch set at 384 kbit/s and 15 fps ->
3.282; G.107 default R = 93.2062, MOS(90) = 4.34, G.711 with PLC at 1 % loss and Ta = 150 ms ->
R = 89.40) are reproduced exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from twin.errors import TwinInputError
from twin.line import AdslLine, Direction, atm_wire_bytes
from twin.profiles import EncoderProfile

if TYPE_CHECKING:
    from twin.scenario.spec import LoadedScenario

__all__ = [
    "CALIBRATION_COLUMNS",
    "CONVERSATION_SPEECH_MOS",
    "EMODEL_DEFAULT_IDLE",
    "EMODEL_DEFAULT_IS",
    "EMODEL_DEFAULT_RO",
    "EVALVID_PSNR_TO_MOS",
    "G114_ONE_WAY_DELAY_MS",
    "G1070_H264_BASELINE_VGA_6_INCH",
    "G1070_H264_VGA_9_2_INCH",
    "G1070_INTEGRATION_2_1_INCH",
    "G1070_INTEGRATION_4_2_INCH",
    "G1070_MPEG4_QQVGA_2_1_INCH",
    "G1070_MPEG4_QVGA_4_2_INCH",
    "CalibrationRow",
    "CalibrationTable",
    "CallScore",
    "G1070Coefficients",
    "G1070IntegrationCoefficients",
    "InterviewQuality",
    "MeasuredPoint",
    "OpinionQualityModel",
    "QualityModel",
    "UsableCriteria",
    "emodel_delay_impairment",
    "emodel_effective_equipment_impairment",
    "emodel_rating",
    "g1070_multimedia_quality",
    "g1070_video_quality",
    "mos_to_r",
    "mouth_to_ear_ms",
    "opus_impairment",
    "psnr_to_mos",
    "quality_for_scenario",
    "r_to_mos",
    "score_call",
    "speech_mos",
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
# ITU-T G.1070 multimedia integration (speech, video and delay -> one score)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class G1070IntegrationCoefficients:
    """Coefficients m1..m14 of ITU-T G.1070's multimedia quality integration function (Annex C, one set
    per video display size). See :func:`g1070_multimedia_quality` and docs/facts.md for their source."""

    m1: float
    m2: float
    m3: float
    m4: float
    m5: float
    m6: float
    m7: float
    m8: float
    m9: float
    m10: float
    m11: float
    m12: float
    m13: float
    m14: float


G1070_INTEGRATION_4_2_INCH = G1070IntegrationCoefficients(
    -4.457e-1, -6.638e-1, 4.042e-1, 2.321, -3.255e-1, 3.309e-1, 1.494e-1, 5.457e-1,
    -3.235e-4, 3.915, -1.377e-3, 0.0, -1.095e-3, 0.0)
"""G.1070 (06/2018) Annex C set for a 4.2-inch display, the largest of the two published sets (the
kiosk's screen is larger: ASSUMPTION). Source: one public implementation quoting the Recommendation
(docs/facts.md); checked here by the model's own properties (tests/test_quality.py)."""

G1070_INTEGRATION_2_1_INCH = G1070IntegrationCoefficients(
    -6.966e-1, -8.127e-1, 4.562e-1, 3.003, -1.638e-1, 3.626e-1, 1.291e-1, 5.456e-1,
    -1.251e-4, 3.763, -1.065e-3, 1.465e-2, -1.002e-3, 0.0)
"""G.1070 (06/2018) Annex C set for a 2.1-inch display (same source as the 4.2-inch set)."""


def g1070_multimedia_quality(
    speech_quality: float,
    video_quality: float,
    speech_delay_ms: float,
    video_delay_ms: float,
    coefficients: G1070IntegrationCoefficients = G1070_INTEGRATION_4_2_INCH,
) -> float:
    """ITU-T G.1070 multimedia quality MMq (MOS 1-5) of one direction of a videophone call::

        MMSV = m5 Sq + m6 Vq + m7 Sq Vq + m8            (audiovisual quality, clipped to [1, 5])
        AD   = m9 (TS + TV) + m10                        (absolute delay)
        MMT  = max(AD + MS, 1)                           (delay factor)
        MMq  = m1 MMSV + m2 MMT + m3 MMSV MMT + m4       (clipped to [1, 5])

    Sq is the speech quality without delay (G.1070's speech function prices coding and loss; the
    delay enters here only), Vq the video quality, TS and TV the one-way speech and video delays in
    ms. The media-synchronisation term MS (lip sync) is taken as 0 (CHOICE): its sign differs between
    readings of the Recommendation and the kiosks' audio-video offset is not measured separately; the
    4.2-inch set's MS is 0 anyway when speech and video are in sync. Outside its fitted domain the
    function would reward delay (``dMMq/dMMT = m2 + m3 MMSV < 0`` when MMSV < 1.64 with the 4.2-inch
    set: speech and video both poor); there MMq is held at its no-delay value (CHOICE), so that delay
    never raises the score.

    Provenance: no copy of G.1070 was at hand; the form and the Annex C sets come from one public
    implementation that quotes the 2018 edition (docs/facts.md). The grouping was checked against the
    properties a multimedia score must have (tests/test_quality.py): with either set MMq never rises
    with delay, and, while TS + TV < 8 s, rises with Vq, and with Sq wherever Vq >= 2.2 (below, the fit
    lowers MMSV by at most 0.1 as Sq rises); it reaches 4.38 at Sq 4.5, Vq 5 without delay, 3.03 at
    Sq = Vq = 4 with 150 ms each way, and about 1.5 with 6-7 s of delay each way (MMT at its floor).

    Raises:
        ValueError: a delay below 0 or a quality outside [1, 5].
    """
    sq, vq = float(speech_quality), float(video_quality)
    ts, tv = float(speech_delay_ms), float(video_delay_ms)
    if not (1.0 <= sq <= 5.0 and 1.0 <= vq <= 5.0 and ts >= 0 and tv >= 0):
        raise ValueError(f"G.1070 MMq needs 1 <= Sq, Vq <= 5 and delays >= 0; got {sq}, {vq}, {ts}, {tv}")
    c = coefficients
    mmsv = min(5.0, max(1.0, c.m5 * sq + c.m6 * vq + c.m7 * sq * vq + c.m8))
    mmt = max(c.m9 * (ts + tv) + c.m10, 1.0)
    if c.m2 + c.m3 * mmsv < 0:  # media so poor that the fit would reward delay: held at no delay
        mmt = max(c.m10, 1.0)
    return min(5.0, max(1.0, c.m1 * mmsv + c.m2 * mmt + c.m3 * mmsv * mmt + c.m4))


# --------------------------------------------------------------------------------------------------
# Scores from measured media (the emulator's decoded audio and video)
# --------------------------------------------------------------------------------------------------

EVALVID_PSNR_TO_MOS: tuple[tuple[float, float], ...] = ((37.0, 5.0), (31.0, 4.0), (25.0, 3.0), (20.0, 2.0))
"""PSNR (dB) -> MOS of EvalVid (Klaue, Rathke, Wolisz, "EvalVid - A Framework for Video Transmission and
Quality Evaluation", TOOLS 2003, Table 1, after Ohm): > 37 excellent (5), 31-37 good (4), 25-31 fair
(3), 20-25 poor (2), < 20 bad (1). Applied per displayed frame and averaged, as EvalVid's ``mos`` tool
does, so frozen frames (lower PSNR against the moving original) pull the mean down."""


def psnr_to_mos(psnr_db: float) -> float:
    """EvalVid's MOS of one displayed frame from its luma PSNR (:data:`EVALVID_PSNR_TO_MOS`)."""
    for floor_db, mos in EVALVID_PSNR_TO_MOS:
        if psnr_db > floor_db:
            return mos
    return 1.0


def mos_to_r(mos: float) -> float:
    """Inverse of :func:`r_to_mos` on [1, 4.5] (bisection; MOS is increasing in R there): the R a MOS
    corresponds to. MOS <= 1 gives 6.5 (where the polynomial first reaches 1), MOS >= 4.5 gives 100."""
    if mos >= 4.5:
        return 100.0
    lo, hi = 6.5, 100.0
    if mos <= 1.0:
        return lo
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if r_to_mos(mid) < mos else (lo, mid)
    return (lo + hi) / 2


def speech_mos(pesq_mos: float, mouth_to_ear_ms: float) -> float:
    """Conversational speech MOS from a listening-quality PESQ score and the mouth-to-ear delay.

    PESQ (P.862 / P.862.2) scores what is heard, not the delay a conversation suffers; the E-model
    (G.107) adds the delay as the impairment Idd. Here ``R = mos_to_r(min(PESQ, 4.5)) - Idd(Ta)`` and the
    result is ``r_to_mos(R)``: PESQ stands in for ``Ro - Is - Ie,eff`` (the listening part), Idd is
    G.107's. CHOICE (a common combination of the two, not an ITU procedure); the wideband P.862.2 score is
    used on the narrowband R scale (G.107.1's wideband scale is not used): a wideband score of 4.5 or more
    saturates at R 100.
    """
    r = mos_to_r(min(float(pesq_mos), 4.5)) - emodel_delay_impairment(mouth_to_ear_ms)
    return r_to_mos(r)


OPUS_LOOKAHEAD_MS = 6.5
"""Opus's algorithmic look-ahead beyond the frame, ms (RFC 6716 section 2: 26.5 ms total delay at 20 ms
frames = frame + 6.5 ms)."""

JITTER_BUFFER_MS = 30.0
"""Receiver's playout (jitter) buffer, ms. ASSUMPTION (aiortc's audio jitter buffer holds a few packets)."""


def mouth_to_ear_ms(network_delay_ms: float, audio_frame_ms: float) -> float:
    """Ta of G.107: network delay + packetisation (one Opus frame) + look-ahead + jitter buffer, ms."""
    return float(network_delay_ms) + float(audio_frame_ms) + OPUS_LOOKAHEAD_MS + JITTER_BUFFER_MS


CONVERSATION_SPEECH_MOS = 3.1
"""Lowest speech MOS for a conversation: R = 60 (r_to_mos(60) = 3.10), the lower edge of ITU-T G.109's
"many users dissatisfied" band; below it "nearly all users dissatisfied"."""

G114_ONE_WAY_DELAY_MS = 400.0
"""ITU-T G.114: one-way delay above 400 ms is unacceptable for general network planning."""


@dataclass(frozen=True)
class UsableCriteria:
    """When an interview is *usable*: the citizen and the agent can hold the conversation and see each
    other, the video never stops, and documents get through within the interview.

    A call without a document is usable when, in both directions, speech MOS (:func:`speech_mos`) >=
    ``min_speech_mos``, video frame rate >= ``min_fps_share`` of the profile's, p95 one-way video delay
    <= ``max_delay_p95_ms`` and no pause (a video gap of 5 s or more, W3C webrtc-stats). A call with a
    scan and a print in flight counts as usable when no pause occurs and each document completes within
    ``max_document_s`` (issue 11's "documents through within the interview"); the speech and delay while
    a document is in flight are measured and reported (:attr:`MeasuredPoint.with_documents`) but not
    required: the citizen and the agent wait for the scan, they need not talk over it (CHOICE).

    Attributes:
        min_speech_mos: :data:`CONVERSATION_SPEECH_MOS`.
        min_fps_share: 0.8 (80 % of the profile's frame rate; issue 11's target. CHOICE).
        max_delay_p95_ms: :data:`G114_ONE_WAY_DELAY_MS`.
        max_document_s: 300 s: a scan or print taking more than 5 minutes of a 20-30 minute interview
            (docs/facts.md) is not "through within the interview". ASSUMPTION.
    """

    min_speech_mos: float = CONVERSATION_SPEECH_MOS
    min_fps_share: float = 0.8
    max_delay_p95_ms: float = G114_ONE_WAY_DELAY_MS
    max_document_s: float = 300.0

    def call_usable(self, row, speech_up: float, speech_down: float, profile: EncoderProfile) -> bool:
        """Whether one measured call (a :class:`CalibrationRow`) is usable."""
        if row.documents:
            return self.documents_through(row)
        if min(speech_up, speech_down) < self.min_speech_mos or row.pauses_up > 0 or row.pauses_down > 0:
            return False
        fps_ok = min(row.video_fps_up, row.video_fps_down) >= self.min_fps_share * profile.frame_rate_fps
        delays = (row.delay_p95_ms_up, row.delay_p95_ms_down)
        return fps_ok and all(not math.isnan(d) and d <= self.max_delay_p95_ms for d in delays)

    def documents_through(self, row) -> bool:
        """Whether the call's scan and print (if any) completed within ``max_document_s`` and no pause."""
        times = [t for t in (row.scan_s, row.print_s)]
        return row.pauses_up == 0 and row.pauses_down == 0 and all(
            not math.isnan(t) and t <= self.max_document_s for t in times)


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
        mos: the interview score: per direction ITU-T G.1070's multimedia quality MMq of its speech,
            video and delay (:func:`g1070_multimedia_quality`), the interview's the worse direction
            (calibration: mean over the measured calls; an interview is as good as what its worse-served
            side sees and hears, CHOICE).
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
    usable: float | None = None
    mos_ci95: float | None = None


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
    listening_speech_mos: float
    mouth_to_ear_ms: float

    @property
    def multimedia_mos(self) -> float:
        """G.1070 MMq of this direction (speech and video delayed alike by the network and the ends)."""
        return g1070_multimedia_quality(self.listening_speech_mos, self.video_mos, self.mouth_to_ear_ms,
                                        self.mouth_to_ear_ms)


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
       ``mos``: per direction G.1070's multimedia quality (:func:`g1070_multimedia_quality`) of the
       listening speech quality (E-model without delay), the video quality and the mouth-to-ear delay
       (speech and video alike); the interview's is the worse direction.

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
        ta_ms = delay_ms + self.endpoint_delay_ms
        r = emodel_rating(ta_ms, loss_pct, ie, bpl)
        listening = r_to_mos(emodel_rating(0.0, loss_pct, ie, bpl))
        return _PathPoint(video_kbps, frame_rate, loss_pct, delay_ms, video_mos, r_to_mos(r), listening, ta_ms)

    def score(self, kiosk_line: AdslLine, agent_line: AdslLine, profile: EncoderProfile) -> InterviewQuality:
        """Score an interview; see the class docstring for the model."""
        up = self.operating_point(kiosk_line, agent_line, profile)
        down = self.operating_point(agent_line, kiosk_line, profile)
        speech = min(up.speech_mos, down.speech_mos)
        return InterviewQuality(
            video_mos_up=up.video_mos,
            video_mos_down=down.video_mos,
            speech_mos=speech,
            mos=min(up.multimedia_mos, down.multimedia_mos),
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
            usable=float(self._usable(up, down, profile)),
        )

    @staticmethod
    def _usable(up: _PathPoint, down: _PathPoint, profile: EncoderProfile,
                criteria: UsableCriteria | None = None) -> bool:
        """:class:`UsableCriteria` on the modelled operating point (no document; no pause modelled)."""
        c = criteria or UsableCriteria()
        return (min(up.speech_mos, down.speech_mos) >= c.min_speech_mos
                and min(up.frame_rate_fps, down.frame_rate_fps) >= c.min_fps_share * profile.frame_rate_fps
                and max(up.network_delay_ms, down.network_delay_ms) <= c.max_delay_p95_ms)


# --------------------------------------------------------------------------------------------------
# Calibration table
# --------------------------------------------------------------------------------------------------

CALIBRATION_COLUMNS: tuple[str, ...] = (
    "profile", "line", "loop_length_m", "up_kbps", "down_kbps", "loss_pct", "documents", "seed",
    "video_fps_up", "video_fps_down", "video_kbps_up", "video_kbps_down", "pauses_up", "pauses_down",
    "delay_p95_ms_up", "delay_p95_ms_down", "video_mos_up", "video_mos_down",
    "audio_loss_pct_up", "audio_loss_pct_down", "audio_delay_ms_up", "audio_delay_ms_down", "pesq_up", "pesq_down",
    "scan_s", "print_s", "share",
)
"""Columns of a calibration CSV, in the order ``twin calibrate`` writes them (one row per emulated call)."""
_DEFAULTED_COLUMNS = {"share": 1.0}
"""Columns a table written before they existed lacks, with the value every row then has (only when the
header lacks them: a row missing a cell of its header is refused)."""
MAX_CALIBRATION_SHARE = 64
"""Most concurrent calls one calibration row was measured among (``twin calibrate OFFER@LOOP_M/N``): 64
calls through one line are already far past what any ADSL line carries."""

_TEXT_COLUMNS = ("profile", "line")
_NUMERIC_COLUMNS = tuple(c for c in CALIBRATION_COLUMNS if c not in _TEXT_COLUMNS)
_OPTIONAL_COLUMNS = frozenset({"delay_p95_ms_up", "delay_p95_ms_down", "pesq_up", "pesq_down", "audio_delay_ms_up",
                               "audio_delay_ms_down", "scan_s", "print_s"})
"""May be empty or ``nan``: not measured (no frame or no speech arrived; no document in the call)."""
_PCT_COLUMNS = frozenset({"loss_pct", "audio_loss_pct_up", "audio_loss_pct_down"})
_MOS_COLUMNS = frozenset({"video_mos_up", "video_mos_down"})
_PESQ_COLUMNS = frozenset({"pesq_up", "pesq_down"})


@dataclass(frozen=True)
class CalibrationRow:
    """One emulated call (see :class:`CalibrationTable` for the meaning of each column)."""

    profile: str
    line: str
    loop_length_m: float
    up_kbps: float
    down_kbps: float
    loss_pct: float
    documents: float
    seed: float
    video_fps_up: float
    video_fps_down: float
    video_kbps_up: float
    video_kbps_down: float
    pauses_up: float
    pauses_down: float
    delay_p95_ms_up: float
    delay_p95_ms_down: float
    video_mos_up: float
    video_mos_down: float
    audio_loss_pct_up: float
    audio_loss_pct_down: float
    audio_delay_ms_up: float
    audio_delay_ms_down: float
    pesq_up: float
    pesq_down: float
    scan_s: float
    print_s: float
    share: float = 1.0


@dataclass(frozen=True)
class CallScore:
    """The scores of one emulated call (:func:`score_call`); per direction ``up`` = heard/seen by the
    agent, ``down`` = heard/seen by the citizen."""

    speech_mos_up: float
    speech_mos_down: float
    video_mos_up: float
    video_mos_down: float
    mos_up: float
    mos_down: float
    mos: float
    usable: bool


def score_call(row: CalibrationRow, profile: EncoderProfile, criteria: UsableCriteria | None = None) -> CallScore:
    """Scores of one measured call.

    Speech per direction: :func:`speech_mos` of the measured PESQ and the mouth-to-ear delay
    (:func:`mouth_to_ear_ms` of the measured mean network delay of the audio packets); 1 when no speech
    was scored. Video per direction: the measured EvalVid mean MOS (``video_mos_*``). Each direction's
    MOS is G.1070's multimedia quality (:func:`g1070_multimedia_quality`) of the PESQ score (listening
    quality, capped at 4.5; 1 when no speech was scored), the EvalVid MOS, the mouth-to-ear delay and
    the p95 capture-to-decode delay of the video (0 when not measured); the call's the worse direction
    (class :class:`InterviewQuality`). ``usable``: :meth:`UsableCriteria.call_usable`.
    """
    criteria = criteria or UsableCriteria()
    speech, multimedia = {}, {}
    for d in ("up", "down"):
        pesq_v, delay = getattr(row, f"pesq_{d}"), getattr(row, f"audio_delay_ms_{d}")
        video = min(5.0, max(1.0, getattr(row, f"video_mos_{d}")))
        video_delay_ms = getattr(row, f"delay_p95_ms_{d}")
        if math.isnan(pesq_v) or math.isnan(delay):
            speech[d], listening, ta_ms = 1.0, 1.0, 0.0
        else:
            ta_ms = mouth_to_ear_ms(delay, profile.audio_frame_ms)
            speech[d], listening = speech_mos(pesq_v, ta_ms), min(float(pesq_v), 4.5)
        multimedia[d] = g1070_multimedia_quality(listening, video, ta_ms,
                                                 0.0 if math.isnan(video_delay_ms) else video_delay_ms)
    mos_up, mos_down = multimedia["up"], multimedia["down"]
    return CallScore(speech["up"], speech["down"], row.video_mos_up, row.video_mos_down, mos_up, mos_down,
                     min(mos_up, mos_down), criteria.call_usable(row, speech["up"], speech["down"], profile))


@dataclass(frozen=True)
class MeasuredPoint:
    """A calibration point (profile x line x loop length x loss), its calls summarised.

    ``mean`` holds each measurement column and each :class:`CallScore` field averaged over the calls
    without a document (``seeds`` of them), ``ci95`` the half-width of a 95 % t confidence interval of the
    same (None with one call); ``worst`` the more pessimistic of the worst call's value of each (lowest
    frame rate, PESQ and MOS; highest delay, loss and pauses) and the 95 % prediction bound for one more
    call (``mean -+ t(n-1) sd sqrt(1 + 1/n)``): what the next call can be expected to stay within;
    ``with_documents`` the same means over the calls with a scan
    and a print in flight (empty when none was measured); ``usable_share`` the share of calls usable
    (no-document calls, times the share of document calls with no pause and both documents through in
    time, when measured); ``usable_share_without_documents`` the first factor alone (the calls without
    a document).
    """

    profile: str
    line: str
    loop_length_m: float
    loss_pct: float
    up_kbps: float
    down_kbps: float
    seeds: int
    mean: Mapping[str, float]
    ci95: Mapping[str, float | None]
    with_documents: Mapping[str, float]
    usable_share: float
    worst: Mapping[str, float]
    share: int = 1
    usable_share_without_documents: float = math.nan

    def describe(self) -> str:
        """One line: the operating point the scores rest on."""
        m = self.mean
        doc = ""
        if self.with_documents:
            w = self.with_documents
            doc = (f"; with a scan in flight {w['video_fps_up']:.1f} fps up, p95 {w['delay_p95_ms_up']:.0f} ms, "
                   f"scan {w['scan_s']:.0f} s")
        shared = f", one of {self.share} calls sharing it" if self.share > 1 else ""
        return (f"{self.profile} on {self.line}@{self.loop_length_m:g} m{shared} ({self.up_kbps:g}/{self.down_kbps:g} kbit/s, "
                f"{self.seeds} calls): video {m['video_kbps_up']:.0f} kbit/s {m['video_fps_up']:.1f} fps up / "
                f"{m['video_fps_down']:.1f} down, p95 delay {m['delay_p95_ms_up']:.0f}/{m['delay_p95_ms_down']:.0f} ms, "
                f"PESQ {m['pesq_up']:.2f}/{m['pesq_down']:.2f}, MOS {m['mos']:.2f}, usable {self.usable_share:.0%}{doc}")


_SCORE_FIELDS = ("speech_mos_up", "speech_mos_down", "video_mos_up", "video_mos_down", "mos_up", "mos_down", "mos")


def _t95(n: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.975, n - 1))


def _summarise(rows: list[CalibrationRow], profile: EncoderProfile, criteria: UsableCriteria) -> MeasuredPoint:
    plain = [r for r in rows if r.documents == 0]
    docs = [r for r in rows if r.documents != 0]
    base = plain or docs
    scores = [score_call(r, profile, criteria) for r in base]
    columns: dict[str, list[float]] = {c: [getattr(r, c) for r in base] for c in _NUMERIC_COLUMNS}
    for f in _SCORE_FIELDS:
        columns[f] = [getattr(s, f) for s in scores]
    mean: dict[str, float] = {}
    ci: dict[str, float | None] = {}
    for c, values in columns.items():
        finite = [v for v in values if not math.isnan(v)]
        mean[c] = sum(finite) / len(finite) if finite else math.nan
        if len(finite) > 1:
            sd = math.sqrt(sum((v - mean[c]) ** 2 for v in finite) / (len(finite) - 1))
            ci[c] = _t95(len(finite)) * sd / math.sqrt(len(finite))
        else:
            ci[c] = None
    worst: dict[str, float] = {}
    for c, values in columns.items():
        finite = [v for v in values if not math.isnan(v)]
        if not finite:
            worst[c] = math.nan
            continue
        higher_is_worse = c.startswith(("delay_", "audio_loss_", "audio_delay_", "pauses_", "scan_", "print_"))
        observed = max(finite) if higher_is_worse else min(finite)
        n = len(finite)
        if n > 1:  # 95 % prediction bound for one more call: mean +- t(n-1) sd sqrt(1 + 1/n)
            sd = math.sqrt(sum((v - mean[c]) ** 2 for v in finite) / (n - 1))
            margin = _t95(n) * sd * math.sqrt(1 + 1 / n)
            bound = mean[c] + margin if higher_is_worse else mean[c] - margin
            observed = max(observed, bound) if higher_is_worse else min(observed, bound)
        # the bound stays on its scale: a score no lower than 1 (MOS, PESQ), a rate or a size no lower than 0
        worst[c] = max(observed, 1.0 if ("mos" in c or c.startswith("pesq")) else 0.0)
    share = plain_share = sum(s.usable for s in scores) / len(scores)
    with_docs: dict[str, float] = {}
    if docs and plain:
        for c in _NUMERIC_COLUMNS:
            finite = [getattr(r, c) for r in docs if not math.isnan(getattr(r, c))]
            with_docs[c] = sum(finite) / len(finite) if finite else math.nan
        share *= sum(criteria.documents_through(r) for r in docs) / len(docs)
    r0 = rows[0]
    return MeasuredPoint(r0.profile, r0.line, r0.loop_length_m, r0.loss_pct, r0.up_kbps, r0.down_kbps, len(base),
                         mean, ci, with_docs, share, worst, int(r0.share), plain_share)


class CalibrationTable:
    """Measured interview quality per encoder profile and emulated line (``twin calibrate``'s output);
    implements :class:`QualityModel`.

    CSV format: a header row with (at least) these columns, one row per emulated call, comma-separated,
    ``.`` decimal point; ``_up`` is kiosk -> agent (what the agent sees and hears), ``_down`` the reverse:

    ===================== ==================================================================================
    profile               encoder profile name (:data:`twin.profiles.PROFILES`), e.g. ``gen1``
    line                  the kiosk line's offer name (:data:`twin.line.OFFERS`)
    loop_length_m         loop length emulated, m (> 0): with the offer it fixes the sync rates
    up_kbps, down_kbps    sync rates emulated, kbit/s of ATM wire (> 0)
    loss_pct              random loss configured on the emulated line, % (0-100)
    documents             1 if a scan and a print were sent during the call, else 0
    seed                  the call's seed
    video_fps_*           good frames/s rendered at the receiver
    video_kbps_*          video codec payload received, kbit/s
    pauses_*              W3C pauses (a gap of 5 s or more) in the received video
    delay_p95_ms_*        95th percentile one-way frame delay (capture to decode), ms
    video_mos_*           mean over the displayed frames of EvalVid's PSNR -> MOS (:func:`psnr_to_mos`)
    audio_loss_pct_*      audio packets lost on the emulated line, %
    audio_delay_ms_*      mean network delay of the audio packets, ms
    pesq_*                P.862.2 wideband PESQ MOS-LQO of the decoded speech against the recording
    scan_s, print_s       time for the scan (uplink) / print (downlink) to complete, s: measured, or
                          projected from the bytes delivered when the call ended first (nan: no document)
    share                 the call was one of ``share`` concurrent calls through the line (booths of one
                          site, ``twin calibrate --lines OFFER@LOOP_M/SHARE``); the sync-rate columns are
                          the line's; 1 when the column is absent (older tables)
    ===================== ==================================================================================

    Columns ``delay_p95_ms_*``, ``audio_delay_ms_*``, ``pesq_*``, ``scan_s``, ``print_s`` may be empty or
    ``nan`` (not measured); every other numeric cell must be a finite number >= 0 (``video_mos_*`` in
    [1, 5], ``pesq_*`` in [1, 5], percentages <= 100). Missing columns, text or NaN where a number is
    required raise :class:`twin.errors.TwinInputError` naming the file, row and column.

    Lookup (:meth:`score`, :meth:`point`): the rows of the profile, the kiosk line's offer, its
    ``loss_pct`` and its ``share`` (the model scores a line carrying n concurrent calls as
    ``line.shared_by(n)``; its rows are those of n calls measured together through the line, ``twin
    calibrate --lines OFFER@LOOP_M/N``, not of the shared-link rule's 1/n line) exactly; then (1) the calls of every measured loop emulated at the kiosk line's sync
    rates, pooled (the emulator's line is defined by its sync rates, loss and interleaving, so equal
    rates are the same line, measured with more seeds); else (2) linear interpolation between the two
    measured loop lengths around the kiosk line's. Anything else - a line, loss or profile not
    measured, a loop outside the measured ones - is refused with an error naming the line (no clamping).

    The agent's line (:meth:`score`): the emulator measured each call with the agent behind a line that
    does not limit it, so a measured point is one hop, the kiosk's line. The agent's line is the same
    kind of hop seen from the other end: its point is looked up by the same rule (its share included: an
    office line carrying n calls is read at share n) with its directions swapped (its uplink carries the
    agent's media to the citizen, the interview's "down"), and the interview gets the worse of the two
    hops in each value (lowest MOS, speech, video score, frame rate, bitrate and usable share; highest
    delay and loss), as a kiosk behind an exchange gets the worse of its line and the backhaul. The
    calibration's scan and print cross the measured line as the kiosk's (scan up, print down); on the
    agent's line they would cross the other way, which is not measured, so the agent's hop counts the
    usable share of its calls without a document.
    ASSUMPTION: the bottleneck hop sets the call's quality; the delay the other hop adds is left out
    (docs/facts.md). :meth:`score_kiosk_side` and :meth:`worst_score` score the kiosk's hop alone.
    """

    def __init__(self, rows: list[CalibrationRow], path: str = "<calibration>",
                 criteria: UsableCriteria | None = None) -> None:
        if not rows:
            raise TwinInputError("calibration table has no rows", path=path)
        self.rows = tuple(rows)
        self.path = path
        self.criteria = criteria or UsableCriteria()
        self._points: dict[tuple[str, str, tuple[float, ...], float, int], MeasuredPoint] = {}

    @classmethod
    def from_records(cls, header: list[str], records: Iterable[tuple[int, Mapping[str, str | None]]],
                     path: str = "<calibration>") -> CalibrationTable:
        """A table from CSV records already read (:func:`twin.datafiles.read_calibration_csv` reads the
        file): the header's column names, then (line number, {column: text}) per row.

        Raises:
            TwinInputError: missing columns, or a bad value (naming the file, the row's line number, the
            column and the value).
        """
        missing = [c for c in CALIBRATION_COLUMNS if c not in header and c not in _DEFAULTED_COLUMNS]
        if missing:
            raise TwinInputError(f"missing column(s) {', '.join(missing)}; expected {', '.join(CALIBRATION_COLUMNS)}",
                                 path=path)
        absent = frozenset(c for c in _DEFAULTED_COLUMNS if c not in header)
        return cls([cls._parse_row(raw, line_num, path, absent) for line_num, raw in records], path=path)

    @staticmethod
    def _parse_row(raw: Mapping[str, str | None], line_num: int, path: str,
                   absent: frozenset[str] = frozenset()) -> CalibrationRow:
        values: dict[str, object] = {}
        for col in _TEXT_COLUMNS:
            text = (raw.get(col) or "").strip()
            if not text:
                raise TwinInputError(f"row at line {line_num}, column {col}: empty value", path=path)
            values[col] = text
        for col in _NUMERIC_COLUMNS:
            if col in absent:
                values[col] = _DEFAULTED_COLUMNS[col]
                continue
            text = (raw.get(col) or "").strip()
            if col in _OPTIONAL_COLUMNS and text.lower() in ("", "nan"):
                values[col] = math.nan
                continue
            try:
                v = float(text)
            except ValueError:
                raise TwinInputError(f"row at line {line_num}, column {col}: not a number: {text!r}", path=path) from None
            ok = math.isfinite(v) and v >= 0
            if col in _MOS_COLUMNS or col in _PESQ_COLUMNS:
                ok = ok and 1.0 <= v <= 5.0
            if col in _PCT_COLUMNS:
                ok = ok and v <= 100.0
            if col in ("up_kbps", "down_kbps", "loop_length_m"):
                ok = ok and v > 0
            if col == "share":
                ok = ok and 1 <= v <= MAX_CALIBRATION_SHARE and v == int(v)
            if not ok:
                raise TwinInputError(f"row at line {line_num}, column {col}: value out of range: {text!r}", path=path)
            values[col] = v
        return CalibrationRow(**values)  # type: ignore[arg-type]

    @property
    def profiles(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.profile for r in self.rows))

    def lines(self, profile: str) -> tuple[str, ...]:
        """Offer names measured for ``profile``."""
        return tuple(dict.fromkeys(r.line for r in self.rows if r.profile == profile))

    def points(self, profile: EncoderProfile, share: int = 1) -> list[MeasuredPoint]:
        """Every measured (line, loop, loss) of ``profile`` as one of ``share`` concurrent calls sees it
        (default: alone), each on its own (sorted by line then loop)."""
        keys = sorted({(r.line, r.loop_length_m, r.loss_pct) for r in self.rows
                       if r.profile == profile.name and r.share == share})
        return [self._point(profile, line, (loop,), loss, share) for line, loop, loss in keys]

    def _point(self, profile: EncoderProfile, line: str, loops: tuple[float, ...], loss: float,
               share: int = 1) -> MeasuredPoint:
        """The calls of ``profile`` on ``line`` at loss ``loss``, share ``share`` and any of ``loops``,
        summarised."""
        key = (profile.name, line, loops, loss, share)
        point = self._points.get(key)
        if point is None:
            rows = [r for r in self.rows if (r.profile, r.line, r.loss_pct, r.share) == (profile.name, line, loss, share)
                    and r.loop_length_m in loops]
            point = self._points[key] = _summarise(rows, profile, self.criteria)
        return point

    def covers(self, kiosk_line: AdslLine, profile: EncoderProfile) -> bool:
        """Whether :meth:`point` finds a measured point for this line and profile."""
        try:
            self.point(kiosk_line, profile)
        except TwinInputError:
            return False
        return True

    def point(self, kiosk_line: AdslLine, profile: EncoderProfile) -> tuple[MeasuredPoint, str]:
        """The measured point for ``kiosk_line`` and ``profile`` and how it was found (lookup rule in the
        class docstring); an interpolated point is a new :class:`MeasuredPoint`.

        Raises:
            TwinInputError: profile, offer, loss or loop length not measured (naming the line).
        """
        offer = kiosk_line.offer.name
        label = f"{offer} at {kiosk_line.loop_length_m:g} m, loss {kiosk_line.loss_pct:g} %"
        if profile.name not in self.profiles:
            raise TwinInputError(f"no calibration rows for profile {profile.name!r}; profiles present: "
                                 f"{', '.join(self.profiles)}", path=self.path)
        rows = [r for r in self.rows if r.profile == profile.name and r.line == offer]
        if not rows:
            raise TwinInputError(f"line {label}: offer {offer!r} not measured for profile {profile.name!r} (measured: "
                                 f"{', '.join(self.lines(profile.name))}); run twin calibrate for it", path=self.path)
        rows = [r for r in rows if r.loss_pct == kiosk_line.loss_pct]
        if not rows:
            raise TwinInputError(f"line {label}: loss {kiosk_line.loss_pct:g} % not measured for {profile.name} on "
                                 f"{offer}; run twin calibrate --loss-pct for it", path=self.path)
        share = kiosk_line.share
        shares = sorted({int(r.share) for r in rows})
        rows = [r for r in rows if r.share == share]
        if not rows and share > MAX_CALIBRATION_SHARE:
            raise TwinInputError(
                f"line {label} as one of {share} concurrent calls: a calibration table holds at most "
                f"{MAX_CALIBRATION_SHARE} calls through one line; use quality model 'opinion' for this site",
                path=self.path)
        if not rows:
            how = "alone" if share == 1 else f"as one of {share} concurrent calls"
            raise TwinInputError(
                f"line {label} {how}: not measured for {profile.name} (shares measured on {offer}: "
                f"{', '.join(map(str, shares))}); run twin calibrate --lines {offer}@{kiosk_line.loop_length_m:g}"
                f"{f'/{share}' if share > 1 else ''}", path=self.path)
        loops = sorted({r.loop_length_m for r in rows})
        loss = kiosk_line.loss_pct
        whole = kiosk_line.shared_by(1)  # rows carry the line's own rates, whatever their share
        up, down = whole.sync_rate_up_kbps, whole.sync_rate_down_kbps
        same = tuple(m for m in loops if m == kiosk_line.loop_length_m or any(  # CSV keeps 6 digits
            r.loop_length_m == m and math.isclose(r.up_kbps, up, rel_tol=1e-5)
            and math.isclose(r.down_kbps, down, rel_tol=1e-5) for r in rows))
        if same:  # the same emulated line measured at each of these loops: all their calls count
            where = "+".join(f"{m:g}" for m in same)
            shared = f", one of {share} calls" if share > 1 else ""
            return (self._point(profile, offer, same, loss, share),
                    f"line {offer}@{where}{shared} (sync rates {up:g}/{down:g})")
        below = [m for m in loops if m < kiosk_line.loop_length_m]
        above = [m for m in loops if m > kiosk_line.loop_length_m]
        if not below or not above:
            raise TwinInputError(f"line {label} ({up:g}/{down:g} kbit/s): outside the measured loop lengths "
                                 f"{', '.join(f'{m:g}' for m in loops)} m of {offer} for {profile.name}; run "
                                 f"twin calibrate --lines {offer}@{kiosk_line.loop_length_m:g}"
                                 f"{f'/{share}' if share > 1 else ''}", path=self.path)
        a, b = self._point(profile, offer, (below[-1],), loss, share), self._point(profile, offer, (above[0],), loss, share)
        w = (kiosk_line.loop_length_m - a.loop_length_m) / (b.loop_length_m - a.loop_length_m)

        def mix(x: Mapping[str, float], y: Mapping[str, float]) -> dict[str, float]:
            return {k: (1 - w) * x[k] + w * y[k] for k in x if k in y}

        point = MeasuredPoint(profile.name, offer, kiosk_line.loop_length_m, loss, up, down, min(a.seeds, b.seeds),
                              mix(a.mean, b.mean), {k: None for k in a.mean},
                              mix(a.with_documents, b.with_documents) if a.with_documents and b.with_documents else {},
                              (1 - w) * a.usable_share + w * b.usable_share, mix(a.worst, b.worst), share,
                              (1 - w) * a.usable_share_without_documents + w * b.usable_share_without_documents)
        return point, f"interpolated {offer}@{a.loop_length_m:g}-{b.loop_length_m:g}"

    def score(self, kiosk_line: AdslLine, agent_line: AdslLine, profile: EncoderProfile) -> InterviewQuality:
        """Measured quality of an interview between a kiosk on ``kiosk_line`` and an agent on
        ``agent_line``: the worse hop of the two lines' measured points (the agent's with its directions
        swapped; rule in the class docstring), each the mean over its calls without a document.

        Raises:
            TwinInputError: no measured point for either line (naming it, and which end it is).
        """
        kiosk = self.score_kiosk_side(kiosk_line, profile)
        try:
            agent_point, agent_how = self.point(agent_line, profile)
        except TwinInputError as exc:
            raise TwinInputError(f"the agent's line: {exc}") from None
        # the calibration's documents cross the measured line as the kiosk's scan (up) and print (down);
        # on the agent's line they would cross the other way, which was not measured: its usable share
        # is that of the calls without a document
        agent = self._from_point(agent_point, agent_how, worst=False, documents=False)
        q = worse_hop(kiosk, swap_directions(agent))
        limits = "the agent's line limits" if agent.mos < kiosk.mos else "the kiosk's line limits"
        return replace(q, source=f"{kiosk.source}; agent's {agent_how}; {limits}")

    def score_kiosk_side(self, kiosk_line: AdslLine, profile: EncoderProfile) -> InterviewQuality:
        """Measured quality for ``profile`` on ``kiosk_line`` alone, the agent's line not limiting (as
        the calls were measured): means over the point's calls without a document.

        Raises:
            TwinInputError: no measured point for the line (naming it).
        """
        return self._quality(kiosk_line, profile, worst=False)

    def worst_score(self, kiosk_line: AdslLine, profile: EncoderProfile) -> InterviewQuality:
        """As :meth:`score_kiosk_side`, with each value the worst over the point's calls
        (:attr:`MeasuredPoint.worst`): what a planner can promise for any call on this kiosk line, not on
        average."""
        return self._quality(kiosk_line, profile, worst=True)

    def _quality(self, kiosk_line: AdslLine, profile: EncoderProfile, worst: bool) -> InterviewQuality:
        point, how = self.point(kiosk_line, profile)
        return self._from_point(point, how, worst)

    def _from_point(self, point: MeasuredPoint, how: str, worst: bool, documents: bool = True) -> InterviewQuality:
        m = point.worst if worst else point.mean
        how = f"{how}, worst of" if worst else how
        return InterviewQuality(
            video_mos_up=m["video_mos_up"],
            video_mos_down=m["video_mos_down"],
            speech_mos=min(m["speech_mos_up"], m["speech_mos_down"]),
            mos=m["mos"],
            video_kbps_up=m["video_kbps_up"],
            frame_rate_fps_up=m["video_fps_up"],
            loss_pct=m["audio_loss_pct_up"],
            one_way_delay_ms=m["delay_p95_ms_up"],
            source=f"calibration:{self.path} ({how}, {point.seeds} calls)",
            video_kbps_down=m["video_kbps_down"],
            frame_rate_fps_down=m["video_fps_down"],
            loss_pct_down=m["audio_loss_pct_down"],
            one_way_delay_ms_down=m["delay_p95_ms_down"],
            speech_mos_up=m["speech_mos_up"],
            speech_mos_down=m["speech_mos_down"],
            usable=point.usable_share if documents else point.usable_share_without_documents,
            mos_ci95=point.ci95.get("mos"),
        )


#: The fields of :class:`InterviewQuality` per direction, (citizen -> agent, agent -> citizen).
_DIRECTED_FIELDS = (("video_mos_up", "video_mos_down"), ("video_kbps_up", "video_kbps_down"),
                    ("frame_rate_fps_up", "frame_rate_fps_down"), ("loss_pct", "loss_pct_down"),
                    ("one_way_delay_ms", "one_way_delay_ms_down"), ("speech_mos_up", "speech_mos_down"))

#: The fields of :class:`InterviewQuality` whose higher value is the worse.
_HIGHER_IS_WORSE = frozenset({"loss_pct", "loss_pct_down", "one_way_delay_ms", "one_way_delay_ms_down"})


def swap_directions(q: InterviewQuality) -> InterviewQuality:
    """``q`` seen from the other end: a line's measured point read as the agent's line, whose uplink
    carries the agent's media to the citizen (each ``_up`` value becomes the ``_down`` one and back). A
    value measured one way only (None the other way) stays where it was."""
    swapped: dict[str, object] = {}
    for up, down in _DIRECTED_FIELDS:
        a, b = getattr(q, up), getattr(q, down)
        swapped[up], swapped[down] = (a, b) if b is None or a is None else (b, a)
    return replace(q, **swapped)  # type: ignore[arg-type]


def worse_hop(kiosk: InterviewQuality, agent: InterviewQuality) -> InterviewQuality:
    """An interview crossing two hops in series, the kiosk's line and the agent's (both as the
    interview's directions see them, :func:`swap_directions`): each value the worse of the two (lowest
    score, rate and usable share; highest loss and delay; a value one hop lacks, None, is the other's),
    the MOS interval the worse hop's. Its source is the kiosk's. ASSUMPTION: the bottleneck hop sets the
    call's quality (docs/facts.md)."""
    values: dict[str, object] = {}
    for f in fields(InterviewQuality):
        a, b = getattr(kiosk, f.name), getattr(agent, f.name)
        if f.name in ("source", "mos_ci95") or b is None:
            values[f.name] = a
        elif a is None:
            values[f.name] = b
        else:
            values[f.name] = max(a, b) if f.name in _HIGHER_IS_WORSE else min(a, b)
    values["mos_ci95"] = kiosk.mos_ci95 if kiosk.mos <= agent.mos else agent.mos_ci95
    return InterviewQuality(**values)  # type: ignore[arg-type]


def quality_for_scenario(loaded: LoadedScenario) -> QualityModel:
    """The scenario's quality model: the calibration table it names (read with the scenario), else the
    default :class:`OpinionQualityModel`."""
    if loaded.spec.quality.model == "calibration" and loaded.calibration is not None:
        return loaded.calibration
    return OpinionQualityModel()
