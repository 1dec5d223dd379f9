"""Apply a :class:`twin.profiles.EncoderProfile` to aiortc 1.16: bitrate bounds, codec choice and the
per-frame coding delays of virtual time. (The profiles themselves, pure data, are :mod:`twin.profiles`.)

How aiortc sets its encoder bitrates (read in the installed sources, aiortc 1.16.0):

* ``aiortc/codecs/vpx.py`` has module constants ``MIN_BITRATE`` (250 000), ``DEFAULT_BITRATE``
  (500 000) and ``MAX_BITRATE`` (1 500 000), in bit/s. ``Vp8Encoder.__init__`` reads ``DEFAULT_BITRATE``
  (the start rate); the ``target_bitrate`` setter, called on every REMB from the receiver, clamps to
  ``[MIN_BITRATE, MAX_BITRATE]`` reading the module globals at each call. ``aiortc/codecs/h264.py`` has
  the same three names (500 000 / 1 000 000 / 3 000 000) used the same way.
* ``aiortc/codecs/opus.py`` has no constant: ``OpusEncoder.__init__`` hard-codes
  ``self.codec.bit_rate = 96000``. The context manager therefore wraps ``OpusEncoder.__init__`` and sets
  ``codec.bit_rate`` after it (the libopus context opens lazily at the first encode, so the value holds).
  The Opus frame duration (``profile.audio_frame_ms``; aiortc: 20 ms, ``SAMPLES_PER_FRAME`` 960) is set
  the same way: libopus's ``frame_duration`` option and a resampler cutting frames of that length.
  aiortc's sender skips encoder calls that return no packet, so longer frames need nothing else.
  Channels (``profile.audio_channels``; aiortc: always stereo) and complexity
  (``profile.audio_complexity``, FFmpeg's ``compression_level`` option of libopus) are set the same way.
* Encoders are created lazily by the RTP sender at its first frame (``codecs.get_encoder``), so the
  constants must be in place for the whole call: :func:`encoder_limits` is entered before the peer
  connections start and left after they are closed.

These are process-wide settings: both peers of a call share them (one profile per call), and two calls
with different profiles must run in different processes (the calibration sweep does).

Codec choice uses the public ``RTCRtpTransceiver.setCodecPreferences`` with the codec's capabilities
(plus RTX for video, so NACK retransmissions keep working).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from aiortc import RTCRtpSender
from aiortc.codecs import h264, opus, vpx
from av import AudioResampler

_VIDEO_MODULES = {"vp8": vpx, "h264": h264}


@dataclass(frozen=True)
class EncoderSettings:
    """What :func:`encoder_limits` applied to aiortc, for the record.

    Attributes:
        video_min_bps, video_start_bps, video_max_bps: VP8/H.264 bitrate bounds and start rate, bit/s.
        audio_bps: Opus bitrate, bit/s.
        audio_frame_ms: Opus frame duration, ms.
        audio_channels: Opus channels, 1 or 2.
        audio_complexity: libopus complexity 0-10, or None for the library default.
    """

    video_min_bps: int
    video_start_bps: int
    video_max_bps: int
    audio_bps: int
    audio_frame_ms: float
    audio_channels: int
    audio_complexity: int | None


def _kbps(profile, name: str, default: float | None) -> float | None:
    value = getattr(profile, name, default)
    return default if value is None else float(value)


def video_bounds_bps(profile) -> tuple[int, int, int]:
    """``(min, start, max)`` video bitrate in bit/s for a profile, made consistent (min <= start <= max)."""
    vmax = _kbps(profile, "video_max_kbps", None)
    vmin = _kbps(profile, "video_min_kbps", None)
    vstart = _kbps(profile, "video_start_kbps", None)
    if vmax is None:
        raise ValueError(f"profile {getattr(profile, 'name', profile)!r} has no video_max_kbps")
    vmin = min(vmin if vmin is not None else vmax / 4, vmax)
    vstart = min(max(vstart if vstart is not None else vmax, vmin), vmax)
    return int(vmin * 1000), int(vstart * 1000), int(vmax * 1000)


@contextlib.contextmanager
def encoder_limits(profile) -> Iterator[EncoderSettings]:
    """Set aiortc's VP8/H.264 bitrate bounds and Opus bitrate from ``profile``; restore on exit.

    Both video codecs get the profile's bounds (whichever is negotiated obeys them). Yields the
    :class:`EncoderSettings` applied, for the record. Not re-entrant across threads (process-wide state).
    """
    vmin, vstart, vmax = video_bounds_bps(profile)
    audio_bps = int(_kbps(profile, "audio_kbps", 96.0) * 1000)
    saved = {mod: (mod.MIN_BITRATE, mod.DEFAULT_BITRATE, mod.MAX_BITRATE) for mod in _VIDEO_MODULES.values()}
    original_opus_init = opus.OpusEncoder.__init__

    frame_ms = float(getattr(profile, "audio_frame_ms", 20.0) or 20.0)
    channels = int(getattr(profile, "audio_channels", 2) or 2)
    complexity = getattr(profile, "audio_complexity", None)
    layout = "mono" if channels == 1 else "stereo"

    def opus_init(self, *args, **kwargs) -> None:
        original_opus_init(self, *args, **kwargs)
        self.codec.bit_rate = audio_bps
        options = dict(self.codec.options)
        if frame_ms != 20.0:
            options["frame_duration"] = f"{frame_ms:g}"
        if complexity is not None:
            options["compression_level"] = str(int(complexity))
        self.codec.options = options
        if frame_ms != 20.0 or layout != "stereo":
            self.codec.layout = layout
            self.resampler = AudioResampler(format="s16", layout=layout, rate=opus.SAMPLE_RATE,
                                            frame_size=int(opus.SAMPLE_RATE * frame_ms / 1000))

    try:
        for mod in _VIDEO_MODULES.values():
            mod.MIN_BITRATE, mod.DEFAULT_BITRATE, mod.MAX_BITRATE = vmin, vstart, vmax
        opus.OpusEncoder.__init__ = opus_init
        yield EncoderSettings(video_min_bps=vmin, video_start_bps=vstart, video_max_bps=vmax, audio_bps=audio_bps,
                              audio_frame_ms=frame_ms, audio_channels=channels, audio_complexity=complexity)
    finally:
        for mod, values in saved.items():
            mod.MIN_BITRATE, mod.DEFAULT_BITRATE, mod.MAX_BITRATE = values
        opus.OpusEncoder.__init__ = original_opus_init


def codec_name(profile) -> str:
    """The profile's video codec, lower case (``"vp8"`` or ``"h264"``)."""
    name = str(getattr(profile, "video_codec", "vp8")).lower().replace(".", "").replace("-", "")
    if name not in _VIDEO_MODULES:
        raise ValueError(f"unsupported video codec {getattr(profile, 'video_codec', None)!r} (vp8 or h264)")
    return name


def video_codec_preferences(profile) -> list:
    """Video codec capabilities to pass to ``setCodecPreferences``: the profile's codec, then RTX."""
    wanted = codec_name(profile)
    caps = RTCRtpSender.getCapabilities("video").codecs
    chosen = [c for c in caps if c.mimeType.lower() == f"video/{wanted}"]
    rtx = [c for c in caps if c.mimeType.lower() == "video/rtx"]
    return chosen + rtx


def audio_codec_preferences() -> list:
    """Opus only (the profiles' speech codec)."""
    caps = RTCRtpSender.getCapabilities("audio").codecs
    return [c for c in caps if c.mimeType.lower() == "audio/opus"]


def apply_codec_preferences(pc, profile) -> None:
    """Set codec preferences on every transceiver of ``pc`` (call after adding tracks, before the offer)."""
    for transceiver in pc.getTransceivers():
        if transceiver.kind == "video":
            transceiver.setCodecPreferences(video_codec_preferences(profile))
        elif transceiver.kind == "audio":
            transceiver.setCodecPreferences(audio_codec_preferences())


# --------------------------------------------------------------------------------------------------
# Per-frame coding delay (for virtual time)
# --------------------------------------------------------------------------------------------------

CODING_DELAY_MS: dict[str, tuple[float, float]] = {
    "gen1": (0.7, 0.13),
    "gen2": (1.7, 0.15),
    "aiortc-stock": (2.3, 0.4),
}
"""Per-frame video ``(encode_ms, decode_ms)`` of each built-in profile: the time one frame spends in
aiortc's encoder (``Vp8Encoder``/``H264Encoder.encode``: conversion, coding, packetisation) and decoder
(``decode`` to a ``VideoFrame``), on the synthetic camera, at the profile's size and start bitrate.
Virtual time makes coding free; :mod:`emulators.virtual_time` adds these delays per video frame instead.
Measured in real time on this machine class (2 cores, load average about 2.5 from other work) with
:func:`measure_coding_delay_ms` (mean over 150 frames; three runs: gen1 0.70-0.74 / 0.13 ms, gen2
1.65-2.90 / 0.12-0.21 ms, aiortc-stock 2.24-2.34 / 0.39-0.40 ms; the lower, unloaded values kept):
``.venv/bin/python -m emulators.encoder_setup``. Not modelled: the real-time pipeline's thread hand-offs
(executor and decoder thread to the event loop, well under 1 ms each when the host is idle) and any CPU
contention. Audio coding (Opus, about 0.1 ms a frame) is taken as free."""

DEFAULT_CODING_DELAY_MS = (2.0, 1.0)
"""Used for a profile not in :data:`CODING_DELAY_MS` whose base name is unknown either."""


def coding_delay_ms(profile) -> tuple[float, float]:
    """``(encode_ms, decode_ms)`` for a profile: its entry in :data:`CODING_DELAY_MS`, or that of the
    built-in profile it was derived from (``gen1+custom`` -> ``gen1``), else the default."""
    name = str(getattr(profile, "name", ""))
    base = name.split("+", 1)[0]
    return CODING_DELAY_MS.get(name, CODING_DELAY_MS.get(base, DEFAULT_CODING_DELAY_MS))


def measure_coding_delay_ms(profile, frames: int = 150) -> tuple[float, float]:
    """Wall time per video frame of aiortc's encoder and decoder for ``profile`` (mean, ms).

    Encodes ``frames`` frames of :class:`emulators.media.SyntheticScene` at the profile's start bitrate
    with aiortc's own encoder (``aiortc.codecs.get_encoder``, bounds from :func:`encoder_limits`), then
    decodes them with ``get_decoder``, one at a time as a call does. Real time, on this host.
    """
    import fractions
    import time

    from aiortc.codecs import get_decoder, get_encoder
    from aiortc.jitterbuffer import JitterFrame

    from emulators.media import SyntheticScene

    codec = video_codec_preferences(profile)[0]
    scene = SyntheticScene(profile.width_px, profile.height_px)
    with encoder_limits(profile):
        encoder = get_encoder(codec)
        encoded = []
        t_enc = 0.0
        for n in range(frames):
            frame = scene.video_frame(n)
            frame.pts = int(n * 90_000 / profile.frame_rate_fps)
            frame.time_base = fractions.Fraction(1, 90_000)
            t0 = time.perf_counter()
            payloads, timestamp = encoder.encode(frame, n == 0)
            t_enc += time.perf_counter() - t0
            encoded.append((payloads, timestamp))
    from aiortc.codecs import depayload

    decoder = get_decoder(codec)
    t_dec = 0.0
    for payloads, timestamp in encoded:
        data = b"".join(depayload(codec, p) for p in payloads)
        t0 = time.perf_counter()
        decoder.decode(JitterFrame(data=data, timestamp=timestamp))
        t_dec += time.perf_counter() - t0
    return 1000.0 * t_enc / frames, 1000.0 * t_dec / frames


if __name__ == "__main__":
    from twin.profiles import PROFILES

    for _name, _profile in PROFILES.items():
        _enc, _dec = measure_coding_delay_ms(_profile)
        print(f"{_name}: encode {_enc:.2f} ms, decode {_dec:.2f} ms per frame")
