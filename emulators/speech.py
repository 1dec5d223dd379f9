"""Speech quality of one direction of an emulated call: PESQ of the decoded audio against the recording.

The microphone plays :data:`emulators.media.SPEECH_FILE` in a loop; the receiver keeps each decoded Opus
frame with its RTP timestamp (``pts``, 48 kHz). :func:`playout` lays the frames on a timeline by their
timestamps, leaving silence where a frame never arrived (aiortc has no packet-loss concealment: a lost
packet is a gap in what is played); :func:`score_speech` finds where in the looped recording the timeline
starts (cross-correlation), cuts the same stretch of the recording and scores the pair with PESQ (the
``pesq`` package, the ITU reference C code) twice: ITU-T P.862 narrowband at 8 kHz, mapped to MOS-LQO
by P.862.1 (``pesq_mos``), and P.862.2 wideband at 16 kHz (``pesq_wb_mos``). The narrowband score is
the one the twin uses: it is on the same listening-quality scale as the ITU-T G.107 E-model's MOS,
to which :func:`twin.quality.speech_mos` adds the delay impairment (G.107's R scale is narrowband; the
wideband score is on another scale and is reported for information).

Frames not decoded are split into three kinds, the evidence for "x % of audio frames not decoded":
``frames_before`` were sent before the first decoded frame (call set-up: the microphone runs before ICE
and DTLS complete), ``frames_after`` after the last one (still queued or in flight when the call
ended: about the one-way delay divided by the frame duration), and ``frames_missing`` inside the decoded
span (true losses: modem buffer, line loss, jitter-buffer discards). Only the last degrade what the
listener hears during the call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

PESQ_RATE_HZ = 16_000
"""P.862.2 wideband works at 16 kHz."""

MAX_PESQ_S = 60.0
"""Longest stretch scored, s (the first of the decoded span): PESQ's cost grows with length and a
minute of speech is many times the 8-12 s of P.862's test material."""

MIN_PESQ_S = 4.0
"""Shortest decoded span scored, s (P.862 recommends 8-12 s samples; under 4 s nothing is reported)."""

RATE_48K_HZ = 48_000


@dataclass(frozen=True)
class SpeechScore:
    """PESQ of one direction.

    Attributes:
        pesq_mos: P.862 narrowband PESQ mapped by P.862.1 (MOS-LQO 1.02-4.55) of the decoded span
            against the recording; None when under :data:`MIN_PESQ_S` of audio was decoded.
        pesq_wb_mos: P.862.2 wideband MOS-LQO (1.04-4.64) of the same; None likewise.
        scored_s: length of the stretch scored, s.
        frames_decoded: frames the receiver decoded.
        frames_missing: frames absent inside the decoded span (lost), by their timestamps.
        frames_before, frames_after: frames sent before the first / after the last decoded frame.
    """

    pesq_mos: float | None
    scored_s: float
    frames_decoded: int
    frames_missing: int
    frames_before: int
    frames_after: int
    pesq_wb_mos: float | None = None

    def to_dict(self) -> dict:
        """JSON-ready dict, keyed by field name."""
        return asdict(self)


def playout(frames: Sequence[tuple[int, np.ndarray]], frame_samples: int) -> tuple[np.ndarray, int]:
    """Decoded frames ``(pts, samples)`` (48 kHz, mono int16) laid out by timestamp, silence in the gaps.

    Returns ``(signal, missing)``: the float64 signal from the first frame's pts to the end of the last
    one, and the number of whole frames of ``frame_samples`` absent in between. Frames out of order or
    overlapping (a duplicate) are placed by their pts; later ones overwrite.
    """
    if not frames:
        return np.zeros(0), 0
    base = frames[0][0]
    offsets = [(pts - base) % (1 << 32) for pts, _ in frames]  # RTP timestamps wrap at 2^32
    end = max(o + s.size for o, (_, s) in zip(offsets, frames))
    signal = np.zeros(end)
    covered = np.zeros(end, dtype=bool)
    for o, (_, s) in zip(offsets, frames):
        signal[o:o + s.size] = s
        covered[o:o + s.size] = True
    missing = int(round((~covered).sum() / frame_samples))
    return signal, missing


def _offset_in_loop(received: np.ndarray, reference: np.ndarray) -> int:
    """Where in the looped ``reference`` the ``received`` signal starts (samples, same rate): the lag of
    the largest cross-correlation, over one period of the loop."""
    n = reference.size
    probe = received[: min(received.size, n)]
    looped = np.concatenate([reference, reference[: probe.size]])
    size = 1 << int(math.ceil(math.log2(looped.size + probe.size)))
    corr = np.fft.irfft(np.fft.rfft(looped, size) * np.conj(np.fft.rfft(probe, size)), size)
    return int(np.argmax(corr[:n]))


def score_speech(frames: Sequence[tuple[int, np.ndarray]], frame_samples: int, frames_sent: int,
                 reference_16k: np.ndarray) -> SpeechScore:
    """PESQ (P.862.2 wideband) of decoded ``frames`` against the looped recording ``reference_16k``.

    Args:
        frames: ``(pts, samples)`` per decoded frame, 48 kHz mono int16, in arrival order.
        frame_samples: samples per sent frame at 48 kHz (960 for 20 ms Opus).
        frames_sent: frames the sender's microphone produced.
        reference_16k: the recording at 16 kHz (int16).
    """
    from pesq import PesqError, pesq
    from scipy.signal import resample_poly

    signal, missing = playout(frames, frame_samples)
    decoded = len(frames)
    span = decoded + missing
    before = 0
    pesq_mos: float | None = None
    pesq_wb: float | None = None
    scored_s = 0.0
    if signal.size >= MIN_PESQ_S * RATE_48K_HZ:
        degraded = resample_poly(signal[: int(MAX_PESQ_S * RATE_48K_HZ)], 1, 3)
        ref = reference_16k.astype(np.float64)
        start = _offset_in_loop(degraded, ref)
        reps = int(math.ceil((start + degraded.size) / ref.size)) + 1
        reference = np.tile(ref, reps)[start:start + degraded.size]
        scored_s = degraded.size / PESQ_RATE_HZ
        try:
            pesq_wb = float(pesq(PESQ_RATE_HZ, reference, degraded, "wb"))
            pesq_mos = float(pesq(PESQ_RATE_HZ // 2, resample_poly(reference, 1, 2), resample_poly(degraded, 1, 2),
                                  "nb"))
        except PesqError:  # NoUtterancesError: only silence arrived
            pesq_mos = pesq_wb = None
        # the first decoded frame's index in the sender's stream (the microphone starts at frame 0)
        before = int(round(((start * 3) % (ref.size * 3)) / frame_samples)) if frames_sent else 0
    before = min(before, max(0, frames_sent - span))
    after = max(0, frames_sent - span - before)
    return SpeechScore(pesq_mos, scored_s, decoded, missing, before, after, pesq_wb)
