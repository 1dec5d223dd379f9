"""Synthetic media for emulated calls: a numbered camera, a speech recording, a scanner and a printer.

Everything a sender emits can be regenerated from a frame number, so the receiver measures quality and
delay against ground truth without any side channel other than a shared in-process ledger of capture
times (both peers of an emulated call live in one process).

Video frames (``yuv420p``) carry their frame number twice in a strip along the top edge: one row of
``BARCODE_BITS`` black/white blocks for the number and a second row with its bitwise complement. A
block's value is read from the mean luma of its interior, so coding noise (ringing, blocking, a shift of
a few levels) does not flip a bit; the complement row rejects frames whose strip was corrupted (returns
``None`` rather than a wrong number). Below the strip, a fixed textured background with a textured disc
("head") and a small bright patch ("hand") moving along Lissajous paths gives the encoder motion to code,
roughly like a seated person talking.

Audio: a 48 kHz mono ``s16`` speech recording (:data:`SPEECH_FILE`, synthesized French sentences) played in
a loop, in frames of the profile's Opus frame duration (20 ms, 960 samples, by default); the receiver
scores what it decoded against it with PESQ (:mod:`emulators.speech`).

Documents: the kiosk uploads a "scanned document" and the agent sends back a "print" over the same
SCTP data channel; each transfer is timed from its first byte handed to the channel to the receiver's
acknowledgement (see :class:`DocumentTransfer`).
"""

from __future__ import annotations

import asyncio
import fractions
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame

VIDEO_CLOCK_RATE = 90_000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE)
AUDIO_SAMPLE_RATE_HZ = 48_000
AUDIO_PTIME_S = 0.020
AUDIO_SAMPLES_PER_FRAME = int(AUDIO_SAMPLE_RATE_HZ * AUDIO_PTIME_S)  # 960
AUDIO_TIME_BASE = fractions.Fraction(1, AUDIO_SAMPLE_RATE_HZ)

BARCODE_BITS = 20  # frame numbers 0 .. 2**20 - 1 (19 h at 15 fps)
_LUMA_BLACK = 32
_LUMA_WHITE = 224


# --------------------------------------------------------------------------------------------------
# Frame numbering: barcode strip
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BarcodeGeometry:
    """Where the frame-number strip lies in a ``width_px`` x ``height_px`` frame (all in pixels)."""

    block_w_px: int
    block_h_px: int

    @property
    def strip_h_px(self) -> int:
        """Height of the whole strip (two rows of blocks)."""
        return 2 * self.block_h_px

    @classmethod
    def for_size(cls, width_px: int, height_px: int) -> BarcodeGeometry:
        """The strip for a ``width_px`` x ``height_px`` frame: :data:`BARCODE_BITS` blocks of even width
        across, as high as wide (at least 8 px) unless the strip would then pass a third of the frame.

        Raises:
            ValueError: a frame too narrow for blocks of 4 px.
        """
        block_w = (width_px // BARCODE_BITS) & ~1
        if block_w < 4:
            raise ValueError(f"frame {width_px} px wide is too narrow for a {BARCODE_BITS}-bit barcode")
        block_h = max(8, block_w)
        if 2 * block_h > height_px // 3:
            block_h = max(4, (height_px // 6) & ~1)
        return cls(block_w_px=block_w, block_h_px=block_h)


_BIT_WEIGHTS = 1 << np.arange(BARCODE_BITS - 1, -1, -1, dtype=np.int64)


def _bits(number: int) -> np.ndarray:
    return (number >> np.arange(BARCODE_BITS - 1, -1, -1)) & 1


def draw_barcode(luma: np.ndarray, frame_no: int) -> None:
    """Paint ``frame_no`` (and its complement) into the top strip of a luma plane, in place."""
    height, width = luma.shape
    geo = BarcodeGeometry.for_size(width, height)
    if not 0 <= frame_no < 2**BARCODE_BITS:
        raise ValueError(f"frame number {frame_no} out of barcode range")
    bits = _bits(frame_no).astype(bool)
    span = BARCODE_BITS * geo.block_w_px
    luma[: geo.strip_h_px, span:] = (_LUMA_BLACK + _LUMA_WHITE) // 2
    luma[: geo.block_h_px, :span] = np.repeat(np.where(bits, _LUMA_WHITE, _LUMA_BLACK), geo.block_w_px)
    luma[geo.block_h_px : geo.strip_h_px, :span] = np.repeat(np.where(bits, _LUMA_BLACK, _LUMA_WHITE), geo.block_w_px)


def read_barcode(luma: np.ndarray) -> int | None:
    """Read the frame number back from a (decoded, possibly noisy) luma plane.

    Each block's value is the mean of its interior (a quarter of the block trimmed on each side) against
    the mid-level threshold. Returns ``None`` when the complement row disagrees (corrupted strip).
    """
    height, width = luma.shape
    geo = BarcodeGeometry.for_size(width, height)
    mx, my = geo.block_w_px // 4, geo.block_h_px // 4
    strip = np.ascontiguousarray(luma[: geo.strip_h_px, : BARCODE_BITS * geo.block_w_px])
    # (2 rows, block_h, BARCODE_BITS, block_w) -> sum of each block's interior, in integers
    blocks = strip.reshape(2, geo.block_h_px, BARCODE_BITS, geo.block_w_px)
    interior = blocks[:, my : geo.block_h_px - my, :, mx : geo.block_w_px - mx]
    sums = interior.sum(axis=(1, 3), dtype=np.int64)
    count = interior.shape[1] * interior.shape[3]
    bits = 2 * sums > (_LUMA_BLACK + _LUMA_WHITE) * count  # mean above the mid level
    if (bits[0] == bits[1]).any():
        return None
    return int(bits[0].astype(np.int64) @ _BIT_WEIGHTS)


# --------------------------------------------------------------------------------------------------
# Synthetic camera
# --------------------------------------------------------------------------------------------------


class SyntheticScene:
    """Reproducible camera content: ``luma(n)`` / ``yuv420p(n)`` depend only on the frame number.

    Args:
        width_px, height_px: frame size (even numbers).
        seed: texture seed; the same seed gives the same pictures (default fixed so that sender and
            receiver regenerate identical references).
    """

    def __init__(self, width_px: int, height_px: int, seed: int = 20050701) -> None:
        if width_px % 2 or height_px % 2:
            raise ValueError("frame size must be even for yuv420p")
        self.width_px = width_px
        self.height_px = height_px
        self.seed = seed
        self.geometry = BarcodeGeometry.for_size(width_px, height_px)
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:height_px, 0:width_px].astype(np.float32)
        # Background: a wall with a soft gradient and a blurred texture (cheap box blur of noise).
        noise = rng.normal(0.0, 1.0, size=(height_px, width_px)).astype(np.float32)
        for axis in (0, 1):
            noise = (noise + np.roll(noise, 1, axis) + np.roll(noise, -1, axis) + np.roll(noise, 2, axis)) / 4
        bg = 90 + 50 * (xx / width_px) + 25 * (yy / height_px) + 18 * noise
        # A "poster" of stripes on the wall: high spatial frequency, static.
        px0, px1 = int(0.70 * width_px), int(0.92 * width_px)
        py0, py1 = int(0.35 * height_px), int(0.75 * height_px)
        bg[py0:py1, px0:px1] = 60 + 120 * ((xx[py0:py1, px0:px1] // 3) % 2)
        self._bg = np.clip(bg, 16, 235).astype(np.uint8)
        # Head: textured disc sprite.
        self._r = max(6, height_px // 5)
        d = 2 * self._r + 1
        sy, sx = np.mgrid[-self._r : self._r + 1, -self._r : self._r + 1]
        self._mask = (sx**2 + sy**2) <= self._r**2
        tex = rng.normal(0.0, 1.0, size=(d, d)).astype(np.float32)
        head = 170 + 25 * np.sin(sx / 3.0) * np.cos(sy / 4.0) + 12 * tex
        self._head = np.clip(head, 16, 235).astype(np.uint8)
        self._hand = max(4, height_px // 12)
        self._base = np.concatenate([
            self._bg,
            np.full((height_px // 4, width_px), 120, np.uint8),  # U plane, (h/2 x w/2) laid out as rows of w
            np.full((height_px // 4, width_px), 135, np.uint8),  # V plane
        ])

    def _positions(self, frame_no: int) -> tuple[int, int, int, int]:
        w, h, r = self.width_px, self.height_px, self._r
        top = self.geometry.strip_h_px + r + 2
        cx = w * 0.4 + 0.18 * w * math.sin(2 * math.pi * frame_no / 97.0)
        cy = (top + h - r - 2) / 2 + 0.25 * (h - top - 2 * r) * math.sin(2 * math.pi * frame_no / 61.0)
        hx = w * 0.5 + 0.35 * w * math.sin(2 * math.pi * frame_no / 23.0)
        hy = h * 0.75 + 0.15 * h * math.cos(2 * math.pi * frame_no / 17.0)
        return int(cx), int(cy), int(hx), int(hy)

    def _paint_luma(self, y: np.ndarray, frame_no: int) -> None:
        """Draw frame ``frame_no``'s moving parts and barcode over a copy of the background ``y``."""
        cx, cy, hx, hy = self._positions(frame_no)
        r = self._r
        region = y[cy - r : cy + r + 1, cx - r : cx + r + 1]
        np.copyto(region, self._head, where=self._mask)
        s = self._hand
        hx = min(max(hx, 0), self.width_px - s)
        hy = min(max(hy, self.geometry.strip_h_px), self.height_px - s)
        y[hy : hy + s, hx : hx + s] = 220 - (frame_no % 8) * 6
        draw_barcode(y, frame_no)

    def luma(self, frame_no: int) -> np.ndarray:
        """The Y plane (uint8, height x width) of frame ``frame_no``."""
        y = self._bg.copy()
        self._paint_luma(y, frame_no)
        return y

    def yuv420p(self, frame_no: int) -> np.ndarray:
        """The frame as a ``(height * 3 / 2, width)`` uint8 array (PyAV's yuv420p ndarray layout)."""
        h, w = self.height_px, self.width_px
        out = self._base.copy()
        self._paint_luma(out[:h], frame_no)
        u = out[h : h + h // 4].reshape(h // 2, w // 2)
        v = out[h + h // 4 :].reshape(h // 2, w // 2)
        cx, cy, _, _ = self._positions(frame_no)
        r2 = self._r // 2
        u[cy // 2 - r2 : cy // 2 + r2, cx // 2 - r2 : cx // 2 + r2] = 110
        v[cy // 2 - r2 : cy // 2 + r2, cx // 2 - r2 : cx // 2 + r2] = 155
        return out

    def video_frame(self, frame_no: int) -> VideoFrame:
        """Frame ``frame_no`` as a PyAV frame. The pictures of the last 16 frame numbers are shared by
        every scene of the same size and seed in the process (both cameras of a call render the same
        numbers at about the same time); the frame wraps the shared, read-only array without copying it."""
        return VideoFrame.from_numpy_buffer(self.picture(frame_no), format="yuv420p")

    def picture(self, frame_no: int) -> np.ndarray:
        """:meth:`yuv420p` of ``frame_no`` from the process-wide cache of recent pictures (read-only)."""
        key = (self.width_px, self.height_px, self.seed, frame_no)
        picture = _recent_pictures.get(key)
        if picture is None:
            picture = self.yuv420p(frame_no)
            picture.flags.writeable = False
            _recent_pictures[key] = picture
            while len(_recent_pictures) > _RECENT_PICTURES:
                _recent_pictures.pop(next(iter(_recent_pictures)))
        return picture


_RECENT_PICTURES = 16
_recent_pictures: dict[tuple[int, int, int, int], np.ndarray] = {}


_frame_origins: dict[int, tuple] = {}


def _register_frame(frame: VideoFrame, scene: SyntheticScene, frame_no: int, frame_rate_fps: float) -> None:
    _frame_origins[id(frame)] = (frame, (scene.width_px, scene.height_px, scene.seed), frame_no, frame_rate_fps)
    while len(_frame_origins) > 64:
        _frame_origins.pop(next(iter(_frame_origins)))


def frame_origin(frame) -> tuple[tuple[int, int, int], int, float] | None:
    """``((width_px, height_px, seed), frame_no, frame_rate_fps)`` of a frame one of the last 64 a
    :class:`SyntheticCameraTrack` produced (so its pixels are ``SyntheticScene(width_px, height_px,
    seed).video_frame(frame_no)``); None for any other frame."""
    entry = _frame_origins.get(id(frame))
    if entry is None or entry[0] is not frame:
        return None
    return entry[1], entry[2], entry[3]


class FrameLedger:
    """Capture times of numbered frames, shared in-process between a sender and its receiver.

    ``captured[n]`` is the sender clock (``loop.time()``, seconds) at which frame ``n`` was handed to
    the encoder; ``previous[n]`` the frame handed to it just before (None for the first), so that a
    receiver can tell a frame the camera skipped from a frame the line lost.
    """

    def __init__(self) -> None:
        self.captured: dict[int, float] = {}
        self.previous: dict[int, int | None] = {}
        self._last: int | None = None

    def record(self, frame_no: int, time_s: float) -> None:
        """Frame ``frame_no`` was captured at ``time_s`` (sender clock, s)."""
        self.captured[frame_no] = time_s
        self.previous[frame_no] = self._last
        self._last = frame_no

    def capture_time(self, frame_no: int) -> float | None:
        """Capture time of frame ``frame_no`` (s), or None if it was never captured."""
        return self.captured.get(frame_no)

    @property
    def frames_sent(self) -> int:
        return len(self.captured)


def frame_pts(frame_no: int, frame_rate_fps: float) -> int:
    """The RTP-clock pts (1/90000 s) :class:`SyntheticCameraTrack` stamps on frame ``frame_no``."""
    return round(frame_no * VIDEO_CLOCK_RATE / frame_rate_fps)


class SyntheticCameraTrack(MediaStreamTrack):
    """A camera at ``frame_rate_fps`` producing :class:`SyntheticScene` frames, paced on ``clock``
    (default ``loop.time``; must be the clock the receiver uses, since delays are differences).

    Frames are numbered by their capture instant ``n / frame_rate_fps`` from the first one. A consumer
    (encoder) that asks for frame ``n`` less than one frame interval after its instant gets it (late by
    that much: it is produced at once); one that is later than that gets the latest frame whose instant
    has come, the ones in between are skipped (``frames_skipped``), as a real camera drops the frames its
    consumer could not take - an overloaded real-time host then loses frames instead of encoding a
    backlog flat out. In virtual time the encoder is never a frame late, so no frame is skipped. Each
    frame's capture time is recorded in ``ledger``.
    """

    kind = "video"

    def __init__(self, scene: SyntheticScene, frame_rate_fps: float, ledger: FrameLedger,
                 clock: Callable[[], float] | None = None) -> None:
        super().__init__()
        self.clock = clock
        if frame_rate_fps <= 0:
            raise ValueError("frame rate must be positive")
        self.scene = scene
        self.frame_rate_fps = frame_rate_fps
        self.ledger = ledger
        self._next_no = 0
        self._start_s: float | None = None
        self.frames_skipped = 0

    async def recv(self) -> VideoFrame:
        """The next frame (numbered, pts on the 90 kHz clock), once its capture time
        ``start + n / frame_rate_fps`` has come (skipping to the latest one when more than a frame
        late: class docstring); its capture time goes to the ledger.

        Raises:
            MediaStreamError: the track has ended.
        """
        if self.readyState != "live":
            raise MediaStreamError
        clock = self.clock or asyncio.get_running_loop().time
        n = self._next_no
        if self._start_s is None:
            self._start_s = clock()
        latest = int((clock() - self._start_s) * self.frame_rate_fps + 1e-9)
        if latest > n:  # more than a frame interval late: take the latest frame, as a camera would
            self.frames_skipped += latest - n
            n = latest
        due = self._start_s + n / self.frame_rate_fps
        wait = due - clock()
        if wait > 0:
            await asyncio.sleep(wait)
        frame = self.scene.video_frame(n)
        frame.pts = frame_pts(n, self.frame_rate_fps)
        frame.time_base = VIDEO_TIME_BASE
        _register_frame(frame, self.scene, n, self.frame_rate_fps)
        self.ledger.record(n, clock())
        self._next_no = n + 1
        return frame


SPEECH_FILE = "data/speech-fr.wav"
"""The microphone's speech (in this package): French sentences a citizen might say at a kiosk, synthesized
with eSpeak NG 1.51 (GPL-3.0 program; its output is not covered by the GPL) by::

    espeak-ng -v fr -s 150 -w speech.wav "Bonjour madame, je viens pour mon dossier de retraite. J'ai reçu
    une lettre de la caisse, mais je ne comprends pas le montant. Pouvez-vous regarder ma fiche de paie?
    Je vous la montre devant la caméra."

then resampled 22 050 -> 16 000 Hz (``scipy.signal.resample_poly(x, 320, 441)``), normalised to a -6 dBFS
peak and padded with 0.5 s of silence at each end (12.6 s, 16-bit mono). Played in a loop."""


@functools.cache
def speech_reference_16k() -> np.ndarray:
    """The speech recording at 16 kHz (int16, read-only): the reference PESQ compares decoded audio with."""
    import importlib.resources

    import scipy.io.wavfile

    with importlib.resources.files("emulators").joinpath(SPEECH_FILE).open("rb") as fh:
        rate, samples = scipy.io.wavfile.read(fh)
    if rate != 16_000 or samples.dtype != np.int16 or samples.ndim != 1:
        raise ValueError(f"{SPEECH_FILE}: expected 16 kHz mono int16, got {rate} Hz {samples.dtype} {samples.shape}")
    samples = samples.copy()
    samples.flags.writeable = False
    return samples


def load_speech() -> None:
    """Read and resample the recording now (once per process), before a call forks its coding worker: a
    worker that had to do it during the call would answer later in wall time than one forked warm."""
    _speech_48k()


@functools.cache
def _speech_48k() -> np.ndarray:
    """The recording upsampled to 48 kHz (``resample_poly``, x3), int16 units as float64."""
    from scipy.signal import resample_poly

    return np.clip(resample_poly(speech_reference_16k().astype(np.float64), 3, 1), -32768, 32767)


def voice_samples(start_sample: int, count: int) -> np.ndarray:
    """Deterministic speech (int16, mono, 48 kHz) for samples ``start_sample ..``: the recording of
    :data:`SPEECH_FILE` upsampled to 48 kHz, played in a loop (a function of the sample index modulo its
    length, so any slice equals the same samples computed in one piece). The array returned is read-only
    (recent ones are shared).
    """
    if start_sample < 0 or count < 0:
        raise ValueError("sample range must be non-negative")
    key = (start_sample, count)
    samples = _recent_voice.get(key)
    if samples is None:
        speech = _speech_48k()
        idx = np.arange(start_sample, start_sample + count, dtype=np.int64)
        samples = np.round(speech[idx % speech.size]).astype(np.int16)
        samples.flags.writeable = False
        _recent_voice[key] = samples
        if len(_recent_voice) > 64:
            _recent_voice.pop(next(iter(_recent_voice)))
    return samples


_recent_voice: dict[tuple[int, int], np.ndarray] = {}
"""The last frames asked for (both microphones of a call ask for the same ones), read-only."""


def voice_frame(index: int, size: int) -> AudioFrame:
    """Voice frame ``index`` of ``size`` samples (48 kHz mono ``s16``, pts ``index * size`` in
    1/48000 s): what :class:`SyntheticVoiceTrack` hands the encoder, and what the virtual-time voice
    sharing regenerates (:mod:`emulators.virtual_time`, :mod:`emulators.coding_worker`)."""
    frame = AudioFrame.from_ndarray(voice_samples(index * size, size).reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate, frame.pts, frame.time_base = AUDIO_SAMPLE_RATE_HZ, index * size, AUDIO_TIME_BASE
    return frame


VOICE_MAX_LAG_S = 0.2
"""How late (s) the voice's consumer may be before the microphone skips to the latest frame (a sound card
buffers about this much)."""


class SyntheticVoiceTrack(MediaStreamTrack):
    """A microphone producing :func:`voice_samples` in frames of ``ptime_s`` (default 20 ms), paced on
    ``loop.time()``.

    A microphone that hands the encoder whole codec frames (60 ms for a profile sending 60 ms Opus
    packets) saves the encoder's resampler from regrouping 20 ms frames; the samples are the same.
    ``frames_sent`` counts frames handed to the encoder, ``samples_sent`` their samples (48 kHz).

    Raises:
        ValueError: ``ptime_s`` not a positive whole number of samples at 48 kHz.
    """

    kind = "audio"

    def __init__(self, ptime_s: float = AUDIO_PTIME_S) -> None:
        super().__init__()
        samples = ptime_s * AUDIO_SAMPLE_RATE_HZ
        if not (samples >= 1 and abs(samples - round(samples)) < 1e-6):
            raise ValueError(f"audio frame of {ptime_s!r} s is not a whole number of 48 kHz samples")
        self.samples_per_frame = int(round(samples))
        self.ptime_s = ptime_s
        self.frames_sent = 0
        self.frames_skipped = 0
        self._next_index = 0
        self._start_s: float | None = None

    @property
    def samples_sent(self) -> int:
        return self.frames_sent * self.samples_per_frame

    async def recv(self) -> AudioFrame:
        """The next voice frame (:func:`voice_frame`), once its time ``start + n * ptime_s`` has come. A
        consumer more than :data:`VOICE_MAX_LAG_S` late skips to the latest frame (a sound card's buffer
        overruns; counted in ``frames_skipped``): an overloaded real-time host does not encode a backlog
        flat out. In virtual time the encoder is never late.

        Raises:
            MediaStreamError: the track has ended.
        """
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        n = self._next_index
        if self._start_s is None:
            self._start_s = loop.time()
        latest = int((loop.time() - self._start_s) / self.ptime_s + 1e-9)
        if (latest - n) * self.ptime_s > VOICE_MAX_LAG_S:
            self.frames_skipped += latest - n
            n = latest
        wait = self._start_s + n * self.ptime_s - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        frame = voice_frame(n, self.samples_per_frame)
        self._next_index = n + 1
        self.frames_sent += 1
        return frame


# --------------------------------------------------------------------------------------------------
# Documents over the data channel
# --------------------------------------------------------------------------------------------------

DOC_CHUNK_BYTES = 4_096
"""Chunk of the earlier, unpaced protocol; kept as the smallest message size worth sending."""

DOC_MESSAGE_BYTES = 16_384
"""Default size of one document message on the data channel, bytes: the 16 KiB chunks browsers' file
transfers send (the WebRTC samples' ``chunkSize``), which every implementation accepts (RFC 8831 advises
interleaving-free stacks to stay at or below 16 KiB)."""

DOC_BUFFER_BYTES = 65_536
"""Default back-pressure watermark, bytes: the sender stops while the channel's ``bufferedAmount`` is
above it and resumes on ``bufferedamountlow`` (threshold: half of it), as browsers' senders do."""

MAX_DOC_MESSAGE_BYTES = 65_536
"""Largest document message: aiortc's (and the SDP's default) ``max-message-size`` is 65536 bytes."""


def document_bytes(kind: str, size_bytes: int) -> bytes:
    """Deterministic, incompressible-looking document content of ``size_bytes`` (a scan or a print)."""
    seed = sum(kind.encode()) * 7919
    return np.random.default_rng(seed).integers(0, 256, size=size_bytes, dtype=np.uint8).tobytes()


@dataclass
class DocumentTransfer:
    """One document crossing the data channel, as seen from both ends (times are ``loop.time()``).

    ``started_s`` when the sender handed the first message to the channel; ``progress`` holds
    ``(time_s, bytes_received_so_far)`` at the receiver; ``received_s`` when the last byte arrived;
    ``acked_s`` when the sender got the receiver's acknowledgement (the completion time). At the sender:
    ``message_bytes`` per message, ``messages_sent``, ``buffer_waits`` (times it waited for
    ``bufferedamountlow``) and the largest ``bufferedAmount`` seen, bytes.
    """

    kind: str
    size_bytes: int
    started_s: float | None = None
    received_s: float | None = None
    acked_s: float | None = None
    bytes_received: int = 0
    progress: list[tuple[float, int]] = field(default_factory=list)
    message_bytes: int = DOC_MESSAGE_BYTES
    messages_sent: int = 0
    buffer_waits: int = 0
    max_buffered_bytes: int = 0

    @property
    def duration_s(self) -> float | None:
        """From the first byte sent to the acknowledgement, s (None until acknowledged)."""
        if self.started_s is None or self.acked_s is None:
            return None
        return self.acked_s - self.started_s


class DocumentEndpoint:
    """One end of the ``docs`` data channel: sends its documents and acknowledges the other end's.

    Protocol (text messages frame binary chunks): ``"begin:<kind>:<size>"``, binary chunks,
    ``"end:<kind>"``; the receiver answers ``"ack:<kind>:<bytes received>"`` once all bytes are in.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.outgoing: dict[str, DocumentTransfer] = {}
        self.incoming: dict[str, DocumentTransfer] = {}
        self._current_in: DocumentTransfer | None = None
        self.channel = None
        self._pacers: list[asyncio.Task] = []

    def attach(self, channel) -> None:
        """Use ``channel`` (an aiortc ``RTCDataChannel``) for documents both ways."""
        self.channel = channel
        channel.on("message", self._on_message)

    def send_document(self, kind: str, size_bytes: int, rate_kbps: float | None = None,
                      message_bytes: int = DOC_MESSAGE_BYTES, buffer_bytes: int = DOC_BUFFER_BYTES) -> DocumentTransfer:
        """Send a document as SCTP messages of ``message_bytes``, with browser-like back-pressure; returns
        its transfer record.

        Args:
            kind: "scan" or "print".
            size_bytes: document size, bytes.
            rate_kbps: application-level pacing, kbit/s of document bytes (one message every
                ``8 * message_bytes / rate`` seconds, on the running asyncio loop); None: as fast as the
                back-pressure lets it.
            message_bytes: bytes per message (1 to :data:`MAX_DOC_MESSAGE_BYTES`).
            buffer_bytes: while the channel's ``bufferedAmount`` is above this the sender waits for the
                ``bufferedamountlow`` event (threshold ``buffer_bytes // 2``): the document never queues
                more than that in the SCTP stack, so SCTP's congestion control, not the application,
                decides what goes on the line.
        """
        transfer = DocumentTransfer(kind=kind, size_bytes=size_bytes, message_bytes=message_bytes)
        self.outgoing[kind] = transfer
        if self.channel is None or self.channel.readyState != "open":
            return transfer
        payload = document_bytes(kind, size_bytes)
        transfer.started_s = self.clock()
        self.channel.send(f"begin:{kind}:{size_bytes}")
        self._pacers.append(asyncio.get_running_loop().create_task(
            self._send(transfer, payload, rate_kbps, message_bytes, buffer_bytes)))
        return transfer

    def _open(self) -> bool:
        return self.channel is not None and self.channel.readyState == "open"

    async def _send(self, transfer: DocumentTransfer, payload: bytes, rate_kbps: float | None, message_bytes: int,
                    buffer_bytes: int) -> None:
        """The sending loop: back-pressure on ``bufferedAmount``, optional pacing, then ``end``."""
        channel = self.channel
        low = asyncio.Event()
        channel.bufferedAmountLowThreshold = buffer_bytes // 2
        channel.on("bufferedamountlow", low.set)
        interval_s = None if rate_kbps is None else message_bytes * 8 / (rate_kbps * 1000.0)
        loop = asyncio.get_running_loop()
        next_s = loop.time()
        for i in range(0, len(payload), message_bytes):
            while self._open() and channel.bufferedAmount > buffer_bytes:
                transfer.buffer_waits += 1
                low.clear()
                await low.wait()
            if not self._open():
                return
            if interval_s is not None and loop.time() < next_s:
                await asyncio.sleep(next_s - loop.time())
            channel.send(payload[i : i + message_bytes])
            transfer.messages_sent += 1
            transfer.max_buffered_bytes = max(transfer.max_buffered_bytes, channel.bufferedAmount)
            if interval_s is not None:  # the next message one interval on; no burst to catch up after a wait
                next_s = max(next_s, loop.time()) + interval_s
        if self._open():
            channel.send(f"end:{transfer.kind}")

    def stop(self) -> None:
        """Cancel paced transfers still running (at the end of a call)."""
        for task in self._pacers:
            task.cancel()

    def _on_message(self, message) -> None:
        now = self.clock()
        if isinstance(message, (bytes, bytearray)):
            cur = self._current_in
            if cur is not None:
                cur.bytes_received += len(message)
                cur.progress.append((now, cur.bytes_received))
            return
        head, _, rest = message.partition(":")
        if head == "begin":
            kind, _, size = rest.partition(":")
            cur = DocumentTransfer(kind=kind, size_bytes=int(size), started_s=now)
            self.incoming[kind] = cur
            self._current_in = cur
        elif head == "end":
            cur = self.incoming.get(rest)
            if cur is not None:
                cur.received_s = now
                self._current_in = None
                if self.channel is not None and self.channel.readyState == "open":
                    self.channel.send(f"ack:{cur.kind}:{cur.bytes_received}")
        elif head == "ack":
            kind, _, _ = rest.partition(":")
            out = self.outgoing.get(kind)
            if out is not None:
                out.acked_s = now
