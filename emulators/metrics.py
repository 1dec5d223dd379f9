"""Receiver-side measurements of an emulated call: pure functions plus small collectors.

The pure functions (:func:`detect_freezes`, :func:`rate_series`, :func:`delay_summary`, :func:`psnr_db`,
:func:`ssim_index`) take plain sequences and return plain records, so they are unit-tested on hand-made
timelines without running a call. The collectors (:class:`VideoSink`, :class:`AudioSink`) consume a
remote aiortc track during a call and keep what the summaries need.

Freeze and pause follow the W3C webrtc-stats definitions (``freezeCount``, ``pauseCount``), which
libwebrtc's ``VideoQualityObserver`` implements: an inter-frame gap is a *freeze* when it is at least
``max(3 * avg, avg + 150 ms)``, ``avg`` being the mean of the last 30 inter-frame gaps; a gap of 5 s or
more is a *pause* instead (counted apart, not a freeze, and kept out of the average). Details that the
W3C text leaves open are chosen as follows (documented, testable): the average is over the gaps
*before* the one judged, and no freeze is declared until ``min_history`` = 5 gaps are known (libwebrtc's
``kMinFrameSamplesToDetectFreeze``; quoted from memory of its source, **unverified**).
"""

from __future__ import annotations

import concurrent.futures
import math
import os
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from aiortc.mediastreams import MediaStreamError

from emulators.chain import decoded_keyframe
from emulators.media import AUDIO_SAMPLE_RATE_HZ, FrameLedger, SyntheticScene, read_barcode
from emulators.speech import SpeechScore

FREEZE_HISTORY_FRAMES = 30
FREEZE_MIN_HISTORY_FRAMES = 5
FREEZE_MIN_INCREASE_S = 0.150
PAUSE_MIN_S = 5.0
PSNR_CAP_DB = 99.0
MAX_SSIM_FRAMES = 120


# --------------------------------------------------------------------------------------------------
# Pure functions
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stall:
    """A freeze or a pause: the frame before it was rendered at ``start_s``, it lasted ``duration_s``."""

    start_s: float
    duration_s: float


@dataclass(frozen=True)
class FreezeStats:
    """Freezes and pauses in one received video stream (W3C webrtc-stats definitions)."""

    freezes: tuple[Stall, ...]
    pauses: tuple[Stall, ...]

    @property
    def freeze_count(self) -> int:
        return len(self.freezes)

    @property
    def total_freeze_s(self) -> float:
        return float(sum(s.duration_s for s in self.freezes))

    @property
    def pause_count(self) -> int:
        return len(self.pauses)

    @property
    def total_pause_s(self) -> float:
        return float(sum(s.duration_s for s in self.pauses))


def detect_freezes(
    render_times_s: Sequence[float],
    *,
    history_frames: int = FREEZE_HISTORY_FRAMES,
    min_history_frames: int = FREEZE_MIN_HISTORY_FRAMES,
    min_increase_s: float = FREEZE_MIN_INCREASE_S,
    pause_min_s: float = PAUSE_MIN_S,
    end_s: float | None = None,
) -> FreezeStats:
    """Find freezes and pauses in a sequence of frame render times (seconds, non-decreasing).

    A gap ``g`` between consecutive frames is a pause if ``g >= pause_min_s``; otherwise a freeze if at
    least ``min_history_frames`` earlier gaps are known and ``g >= max(3 * avg, avg + min_increase_s)``
    where ``avg`` is the mean of the last ``history_frames`` earlier non-pause gaps. If ``end_s`` is
    given, the silence from the last frame to ``end_s`` is judged too (a stream that stops for good
    ends with a pause or a freeze). Linear in the number of frames.
    """
    times = [float(t) for t in render_times_s]
    if end_s is not None and times and end_s > times[-1]:
        times.append(float(end_s))
    freezes: list[Stall] = []
    pauses: list[Stall] = []
    window: deque[float] = deque(maxlen=history_frames)
    window_sum = 0.0
    for prev, cur in zip(times, times[1:]):
        gap = cur - prev
        if gap < 0:
            raise ValueError("render times must be non-decreasing")
        if gap >= pause_min_s:
            pauses.append(Stall(prev, gap))
            continue
        if len(window) >= min_history_frames:
            avg = window_sum / len(window)
            if gap >= max(3 * avg, avg + min_increase_s):
                freezes.append(Stall(prev, gap))
        if len(window) == window.maxlen:
            window_sum -= window[0]
        window.append(gap)
        window_sum += gap
    return FreezeStats(tuple(freezes), tuple(pauses))


def rate_series(times_s: Sequence[float], start_s: float, end_s: float, bin_s: float = 1.0,
                weights: Sequence[float] | None = None) -> list[float]:
    """Events (or summed ``weights``) per second in consecutive ``bin_s`` bins over ``[start_s, end_s)``.

    With no weights this is a frame rate in fps; with weights in bits it is a bitrate in bit/s.
    """
    if end_s <= start_s:
        return []
    n_bins = max(1, int(math.ceil((end_s - start_s) / bin_s - 1e-9)))
    t = np.asarray(times_s, dtype=float)
    w = np.ones_like(t) if weights is None else np.asarray(weights, dtype=float)
    idx = np.floor((t - start_s) / bin_s).astype(int)
    keep = (idx >= 0) & (idx < n_bins)
    sums = np.bincount(idx[keep], weights=w[keep], minlength=n_bins)
    # The last bin may be shorter than bin_s.
    widths = np.full(n_bins, bin_s)
    widths[-1] = (end_s - start_s) - bin_s * (n_bins - 1)
    return [float(x) for x in sums / np.maximum(widths, 1e-9)]


@dataclass(frozen=True)
class DelaySummary:
    """End-to-end delay statistics in milliseconds (``None`` when there were no samples)."""

    count: int
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    max_ms: float | None


def delay_summary(delays_s: Sequence[float]) -> DelaySummary:
    """Mean, median, 95th percentile and max of delays given in seconds, reported in ms."""
    if len(delays_s) == 0:
        return DelaySummary(0, None, None, None, None)
    d = np.asarray(delays_s, dtype=float) * 1000.0
    return DelaySummary(
        count=int(d.size),
        mean_ms=float(d.mean()),
        p50_ms=float(np.percentile(d, 50)),
        p95_ms=float(np.percentile(d, 95)),
        max_ms=float(d.max()),
    )


def psnr_db(reference: np.ndarray, decoded: np.ndarray) -> float:
    """Peak signal-to-noise ratio of 8-bit planes, in dB (capped at ``PSNR_CAP_DB`` for identical ones)."""
    diff = np.subtract(reference, decoded, dtype=np.int32)
    mse = int(np.square(diff).sum(dtype=np.int64)) / diff.size  # exact integer sum of squares
    if mse <= 0.0:
        return PSNR_CAP_DB
    return min(PSNR_CAP_DB, 10.0 * math.log10(255.0**2 / mse))


def ssim_index(reference: np.ndarray, decoded: np.ndarray) -> float:
    """Structural similarity (Wang et al. 2004) of 8-bit luma planes, via scikit-image."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(reference.astype(np.float32), decoded.astype(np.float32), data_range=255))


# --------------------------------------------------------------------------------------------------
# Collectors used during a call
# --------------------------------------------------------------------------------------------------


@dataclass
class ReceivedFrame:
    """One decoded video frame: receive time (``loop.time()``), number read from the barcode, and
    whether it was decoded from an intact reference chain (:mod:`emulators.chain`)."""

    time_s: float
    frame_no: int | None
    intact: bool = True


class VideoSink:
    """Consume a remote video track: time each frame, read its number, keep luma planes for quality.

    Luma planes are kept for at most ``max_quality_frames`` frames: when the store is full, every other
    stored frame is dropped and the sampling stride doubles (uniform subsampling of a long call), so
    PSNR/SSIM are computed after the call, off the real-time path.
    """

    def __init__(self, ledger: FrameLedger, clock: Callable[[], float], max_quality_frames: int = 600) -> None:
        self.ledger = ledger
        self.clock = clock
        self.frames: list[ReceivedFrame] = []
        self.quality_store: list[tuple[int, np.ndarray]] = []
        self.max_quality_frames = max_quality_frames
        self._stride = 1
        self._seen_identified = 0
        self._chain_intact = False  # no keyframe seen yet
        self._last_no: int | None = None
        self.size: tuple[int, int] | None = None

    def _chain(self, frame, number: int | None) -> bool:
        """The reference-chain rule of :mod:`emulators.chain`: a keyframe starts an intact chain, a frame
        whose predecessor at the sender (the ledger's, so frames the camera skipped do not count) is the
        previous decoded frame keeps it, a gap or an unreadable number breaks it. An untagged frame
        (no wrapped decoder: a sink used outside a call) counts as intact."""
        key = decoded_keyframe(frame)
        if key is None or key:
            intact = True
        elif number is None or self._last_no is None or self.ledger.previous.get(number, -1) != self._last_no:
            intact = False  # a frame sent between the last decoded one and this one was not decoded
        else:
            intact = self._chain_intact
        self._chain_intact = intact
        self._last_no = number
        return intact

    def on_frame(self, frame) -> None:
        """Record one decoded frame: receive time, number read from its barcode (None if unreadable),
        whether its reference chain is intact, and its luma plane for the quality store (every
        ``stride``-th identified frame)."""
        now = self.clock()
        plane = frame.planes[0]  # the decoder's Y plane, viewed in place (rows padded to line_size)
        luma = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
        self.size = (frame.width, frame.height)
        try:
            number = read_barcode(luma)
        except ValueError:
            number = None
        self.frames.append(ReceivedFrame(now, number, self._chain(frame, number)))
        if number is None:
            return
        if self._seen_identified % self._stride == 0:
            self.quality_store.append((number, luma.copy()))
            if len(self.quality_store) > self.max_quality_frames:
                self.quality_store = self.quality_store[::2]
                self._stride *= 2
        self._seen_identified += 1

    async def run(self, track) -> None:
        """Read frames until the track ends or the task is cancelled."""
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.on_frame(frame)


class AudioSink:
    """Consume a remote audio track, counting decoded samples (48 kHz) and their arrival times, and keeping
    the decoded speech (mono, with each frame's RTP timestamp) of the first ``max_keep_s`` seconds for
    PESQ (:mod:`emulators.speech`)."""

    def __init__(self, clock: Callable[[], float], max_keep_s: float = 60.0) -> None:
        self.clock = clock
        self.samples_received = 0
        self.frame_times_s: list[float] = []
        self.frames: list[tuple[int, np.ndarray]] = []
        self._keep_samples = int(max_keep_s * AUDIO_SAMPLE_RATE_HZ)
        self._kept = 0

    async def run(self, track) -> None:
        """Read audio frames until the track ends or the task is cancelled, counting samples at 48 kHz."""
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.on_frame(frame)

    def on_frame(self, frame) -> None:
        """Record one decoded frame (aiortc's Opus decoder gives packed ``s16`` at 48 kHz, pts = RTP
        timestamp)."""
        self.frame_times_s.append(self.clock())
        # aiortc's Opus decoder outputs 48 kHz; count per-channel samples at that rate.
        self.samples_received += int(frame.samples * AUDIO_SAMPLE_RATE_HZ / (frame.sample_rate or AUDIO_SAMPLE_RATE_HZ))
        if self._kept < self._keep_samples and frame.pts is not None and frame.sample_rate == AUDIO_SAMPLE_RATE_HZ:
            channels = len(frame.layout.channels)
            pcm = frame.to_ndarray().reshape(-1, channels)[:, 0].astype(np.int16)
            self.frames.append((int(frame.pts), pcm))
            self._kept += pcm.size


# --------------------------------------------------------------------------------------------------
# Per-direction video summary
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoSummary:
    """What one direction's receiver got over a window ``[start_s, end_s]`` (:func:`summarize_video`).

    Times are seconds from the window start unless named ``_ms``; rates per second of the window.

    Attributes:
        frames_sent: frames the sender's camera handed its encoder (the whole call).
        frames_decoded: frames the receiver decoded in the window; ``frames_unidentified`` of them had
            an unreadable frame number; ``frames_broken_reference`` were decoded from a broken reference
            chain (after a lost frame, before the next keyframe: :mod:`emulators.chain`), the rest are
            good frames.
        first_frame_s: first decoded frame, s from the window start (None: no frame).
        fps_mean: good frames per second over the whole window (0 when nothing arrived);
            ``fps_series`` per second of the window; ``fps_decoded_mean`` counts every decoded frame.
        freeze_count, freeze_total_s, freezes_per_min: freezes (W3C webrtc-stats definition, on the good
            frames' render times) and their total length, s; rate per minute from the first frame on.
            ``pause_count``, ``pause_total_s`` likewise for pauses (gaps of 5 s or more).
        freezes, pauses: each stall, its ``start_s`` from the window start.
        delay: capture-to-decode delay of the identified frames (ms); ``delay_series_ms`` its
            ``(receive time s from the window start, delay ms)`` per frame.
        psnr_db: mean luma PSNR, dB, over ``quality_frames`` frames; ``ssim`` mean SSIM (0-1) over
            ``ssim_frames`` of them (None when not computed or no frame).
        displayed_psnr_db, video_mos, displayed_frames: what the viewer saw, EvalVid's way (Klaue,
            Rathke and Wolisz 2003): every frame the camera sent between the first and the last decoded
            one (``displayed_frames`` of them) is compared with the decoded frame on screen at its slot,
            the last decoded one at or before it (a frame lost or skipped leaves the previous one frozen
            on screen); ``displayed_psnr_db`` is their mean PSNR and ``video_mos`` the mean of
            :func:`twin.quality.psnr_to_mos` per slot. None when no frame was decoded or the store was
            subsampled (calls longer than ``max_quality_frames`` frames).
    """

    frames_sent: int
    frames_decoded: int
    frames_unidentified: int
    frames_broken_reference: int
    first_frame_s: float | None
    fps_mean: float
    fps_decoded_mean: float
    fps_series: tuple[float, ...]
    freeze_count: int
    freeze_total_s: float
    freezes_per_min: float
    pause_count: int
    pause_total_s: float
    freezes: tuple[Stall, ...]
    pauses: tuple[Stall, ...]
    delay: DelaySummary
    delay_series_ms: tuple[tuple[float, float], ...]
    psnr_db: float | None
    ssim: float | None
    quality_frames: int
    ssim_frames: int
    displayed_psnr_db: float | None
    video_mos: float | None
    displayed_frames: int

    def to_dict(self) -> dict:
        """JSON-ready dict, keyed by field name (stalls and delay as nested dicts)."""
        return asdict(self)


def summarize_video(
    sink: VideoSink,
    scene: SyntheticScene,
    start_s: float,
    end_s: float,
    *,
    compute_ssim: bool = True,
    max_ssim_frames: int = MAX_SSIM_FRAMES,
) -> VideoSummary:
    """Turn a :class:`VideoSink`'s raw records into a :class:`VideoSummary` over ``[start_s, end_s]``.

    Delay of a frame = receive time - capture time recorded by the sender (same process clock).
    Frames decoded more than once (a repeated number) count once for delay and quality. The frame rate
    is over the whole call window, so a call that never shows video has 0 fps, not an undefined one.
    PSNR (luma) is computed on every stored frame; SSIM (scikit-image, about 5 ms a 320x240 frame, in up
    to 4 threads) on an evenly spaced subset of at most ``max_ssim_frames`` of them, to keep the post-call work short.
    """
    times = [f.time_s for f in sink.frames if f.intact]  # good frames: what the viewer sees right
    all_times = [f.time_s for f in sink.frames]
    duration_s = max(end_s - start_s, 1e-9)
    stalls = detect_freezes(times, end_s=end_s) if times else FreezeStats((), ())
    delays = []
    delay_series = []
    seen: set[int] = set()
    for f in sink.frames:
        if f.frame_no is None or f.frame_no in seen:
            continue
        seen.add(f.frame_no)
        t0 = sink.ledger.capture_time(f.frame_no)
        if t0 is not None:
            delays.append(f.time_s - t0)
            delay_series.append((round(f.time_s - start_s, 4), round((f.time_s - t0) * 1000, 2)))
    psnrs, ssims = [], []
    done: set[int] = set()
    unique = []
    for number, luma in sink.quality_store:
        if number in done or luma.shape != (scene.height_px, scene.width_px):
            continue
        done.add(number)
        unique.append((number, luma))
    ssim_stride = max(1, int(math.ceil(len(unique) / max(1, max_ssim_frames))))
    ssim_pairs = []
    for i, (number, luma) in enumerate(unique):
        ref = scene.luma(number)
        psnrs.append(psnr_db(ref, luma))
        if compute_ssim and i % ssim_stride == 0:
            ssim_pairs.append((ref, luma))
    if ssim_pairs:
        # scikit-image's filters release the GIL: the frames' SSIMs run in threads, in order.
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            ssims = list(pool.map(lambda pair: ssim_index(*pair), ssim_pairs))
    # Freeze rate over the span where video could have flowed (from the first frame on).
    first = all_times[0] - start_s if all_times else None
    watch_min = (end_s - times[0]) / 60.0 if times else 0.0
    return VideoSummary(
        frames_sent=sink.ledger.frames_sent,
        frames_decoded=len(all_times),
        frames_unidentified=sum(1 for f in sink.frames if f.frame_no is None),
        frames_broken_reference=sum(1 for f in sink.frames if not f.intact),
        first_frame_s=first,
        fps_mean=len(times) / duration_s,
        fps_decoded_mean=len(all_times) / duration_s,
        fps_series=tuple(rate_series(times, start_s, end_s)),
        freeze_count=stalls.freeze_count,
        freeze_total_s=stalls.total_freeze_s,
        freezes_per_min=(stalls.freeze_count / watch_min) if watch_min > 0 else 0.0,
        pause_count=stalls.pause_count,
        pause_total_s=stalls.total_pause_s,
        freezes=tuple(Stall(s.start_s - start_s, s.duration_s) for s in stalls.freezes),
        pauses=tuple(Stall(s.start_s - start_s, s.duration_s) for s in stalls.pauses),
        delay=delay_summary(delays),
        delay_series_ms=tuple(delay_series),
        psnr_db=float(np.mean(psnrs)) if psnrs else None,
        ssim=float(np.mean(ssims)) if ssims else None,
        quality_frames=len(psnrs),
        ssim_frames=len(ssims),
        **_displayed_quality(sink, scene, unique, dict(zip((n for n, _ in unique), psnrs))),
    )


def _displayed_quality(sink: VideoSink, scene: SyntheticScene, unique: list[tuple[int, np.ndarray]],
                       decoded_psnr: dict[int, float]) -> dict[str, float | int | None]:
    """``displayed_psnr_db`` (mean PSNR, dB), ``video_mos`` (mean EvalVid MOS) and ``displayed_frames``
    (slots) of what was on screen at each sent frame's slot between the first and the last decoded frame
    (see :class:`VideoSummary`)."""
    from twin.quality import psnr_to_mos

    none = {"displayed_psnr_db": None, "video_mos": None, "displayed_frames": 0}
    if not unique or sink._stride != 1:
        return none
    stored = sorted(unique, key=lambda pair: pair[0])
    numbers = [n for n, _ in stored]
    slots = [n for n in sorted(sink.ledger.captured) if numbers[0] <= n <= numbers[-1]]
    values = []
    k = 0
    for n in slots:
        while k + 1 < len(stored) and numbers[k + 1] <= n:
            k += 1
        shown_no, shown = stored[k]
        values.append(decoded_psnr[n] if shown_no == n else psnr_db(scene.luma(n), shown))
    if not values:
        return none
    return {"displayed_psnr_db": float(np.mean(values)), "video_mos": float(np.mean([psnr_to_mos(v) for v in values])),
            "displayed_frames": len(values)}


@dataclass(frozen=True)
class AudioSummary:
    """One direction's audio: frames and samples (48 kHz) sent vs decoded, network loss (%) and jitter
    (ms) from RTP statistics (None when the receiver reported none). ``decoded_loss_pct`` compares
    samples, since microphone frames and decoded frames need not have the same length; samples still in
    flight when the call ends count as lost."""

    frames_sent: int
    frames_decoded: int
    samples_sent: int
    samples_decoded: int
    packets_received: int | None
    packets_lost: int | None
    packet_loss_pct: float | None
    jitter_ms: float | None
    decoded_loss_pct: float | None
    speech: SpeechScore | None = None

    def to_dict(self) -> dict:
        """JSON-ready dict, keyed by field name."""
        return asdict(self)


def loss_pct(received: int | None, lost: int | None) -> float | None:
    """Lost / expected in %, from RTP receiver counters (``None`` if nothing was expected)."""
    if received is None or lost is None or received + lost <= 0:
        return None
    return 100.0 * max(lost, 0) / (received + max(lost, 0))


@dataclass
class StatsSnapshot:
    """The RTP statistics aiortc's ``getStats()`` gives, reduced to what the results use."""

    inbound: dict = field(default_factory=dict)  # kind -> {packets_received, packets_lost, jitter_ms}
    remote_inbound: dict = field(default_factory=dict)  # kind -> {rtt_ms, fraction_lost}
    outbound: dict = field(default_factory=dict)  # kind -> {packets_sent, bytes_sent}


async def snapshot_stats(pc, clock_rates: dict[str, int]) -> StatsSnapshot:
    """Read one peer connection's ``getStats()`` (RTP jitter converted from clock units to ms)."""
    report = await pc.getStats()
    snap = StatsSnapshot()
    for stat in report.values():
        kind = getattr(stat, "kind", None)
        if stat.type == "inbound-rtp":
            rate = clock_rates.get(kind, 90_000)
            snap.inbound[kind] = {
                "packets_received": _int_or_none(stat.packetsReceived),
                "packets_lost": _int_or_none(stat.packetsLost),
                "jitter_ms": None if stat.jitter is None else 1000.0 * float(stat.jitter) / rate,
            }
        elif stat.type == "remote-inbound-rtp":
            if stat.roundTripTime is not None:
                snap.remote_inbound[kind] = {
                    "rtt_ms": 1000.0 * float(stat.roundTripTime),
                    # RTCP receiver reports carry the fraction lost in 1/256 units (RFC 3550 6.4.1)
                    "fraction_lost": None if stat.fractionLost is None else float(stat.fractionLost) / 256.0,
                }
        elif stat.type == "outbound-rtp":
            snap.outbound[kind] = {"packets_sent": _int_or_none(stat.packetsSent),
                                   "bytes_sent": _int_or_none(stat.bytesSent)}
    return snap


def _int_or_none(value) -> int | None:
    return None if value is None else int(value)
