"""Encoder profiles of the kiosk generations: what each kiosk sends over its uplink. Pure data.

A profile fixes the video codec, picture size, frame rate and the encoder's bitrate bounds (the
emulator applies them to aiortc's module constants, see ``emulators/encoder_setup.py``), plus the Opus
audio bitrate. The quality models (:mod:`twin.quality`) derive the operating point from a profile and
the ADSL lines.

Built-in profiles (:data:`PROFILES`):

* ``gen1`` - first-generation user kiosks (2005-2007), sized for a 128 kbit/s uplink: VP8 320x240 at
  15 fps, video capped at 32 kbit/s, Opus 16 kbit/s in 60 ms frames, scans paced at 16 kbit/s. docs/facts.md
  (aiortc section) quotes a 50 kbit/s cap carrying 15 fps without drops, an IP-level figure: over PPPoE
  LLC the ATM cell tax on 20 ms Opus packets alone takes 64 kbit/s of a 128 kbit/s sync rate. (The 2005 kiosks used a proprietary videophone; VP8
  and Opus stand in for it in the emulator.)
* ``gen1`` and ``gen2`` send Opus in mono (libwebrtc sends mono unless the SDP asks for stereo; a kiosk
  has one microphone, CHOICE) at complexity 10, libopus's default. Measured (docs/operating-points.md,
  ``python -m emulators.operating_points --audio``: PESQ of the codec alone on the shipped recording),
  complexity 10 instead of 5 (libwebrtc's choice on phones) raises narrowband PESQ from 2.62 to 3.36 for
  gen1 (16 kbit/s, 60 ms) and from 3.53 to 4.12 for gen2 (24 kbit/s, 20 ms) at the same bitrate, so the
  same ATM cells on the line; it costs only encoder CPU, which a kiosk PC has.
* ``gen2`` - second generation, interoperable with the standard (H.323/SIP room) videoconference
  systems services already owned (docs/facts.md, seed article). H.264 CIF 352x288 at 25 fps (the common
  interoperable format of European room systems; CHOICE), video 96-768 kbit/s starting at 256
  (CHOICE: 96 leaves room for audio on a 256 kbit/s uplink, 768 fills an ADSL Max / ADSL2+ uplink of
  800-1000 kbit/s with headroom), Opus 24 kbit/s (CHOICE; standard systems would use G.722 at 64).
* ``aiortc-stock`` - aiortc 1.16 unchanged: VP8 bounds min 250 / default 500 / max 1500 kbit/s
  (``aiortc/codecs/vpx.py``), Opus fixed at 96 kbit/s (``aiortc/codecs/opus.py``), 640x480 at 30 fps
  (the frame size and rate of aiortc's ``VideoStreamTrack``). docs/facts.md: cannot fit a 128 or 256 kbit/s
  uplink.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from twin.errors import TwinInputError

__all__ = ["GENERATION_PROFILES", "PROFILES", "VIDEO_OPERATING_POINTS_KBPS", "EncoderProfile", "get_profile",
           "profile_for_generation", "profile_for_line"]

_VIDEO_CODECS = ("VP8", "H264")


@dataclass(frozen=True)
class EncoderProfile:
    """Media sent by one end of an interview.

    Attributes:
        name: key in :data:`PROFILES`.
        video_codec: ``"VP8"`` or ``"H264"``.
        width_px, height_px: picture size, pixels.
        frame_rate_fps: capture / target frame rate, frames per second.
        video_min_kbps: encoder's lowest bitrate (rate control never goes below), kbit/s.
        video_max_kbps: encoder's highest bitrate, kbit/s.
        video_start_kbps: bitrate at call start, kbit/s (min <= start <= max).
        audio_kbps: Opus bitrate, kbit/s (constant).
        description: provenance of the numbers.
        generation: kiosk generation this profile belongs to (None for reference profiles).
        audio_frame_ms: Opus frame (packet) duration, ms: 20 (aiortc's default) or 40/60. Longer frames
            send fewer packets, so less header and ATM cell tax: on PPPoE LLC, 16 kbit/s Opus costs
            64 kbit/s of sync rate at 20 ms, 35 kbit/s at 60 ms (twin.line.atm_wire_bytes).
        document_kbps: the kiosk application's pacing of document transfers over the data channel,
            kbit/s of document bytes (None: as fast as SCTP allows, aiortc's behaviour). Pacing keeps a
            scan from filling the modem buffer and starving the call (docs/facts.md: a 300 KB scan with video
            on a 128 kbit/s uplink starves).
        audio_channels: Opus channels sent, 1 (mono) or 2. A kiosk has one microphone; libwebrtc sends
            mono unless the SDP asks for ``stereo=1`` (``GetChannelCount`` in
            ``modules/audio_coding/codecs/opus/audio_encoder_opus.cc``), while aiortc's ``OpusEncoder``
            always encodes stereo (2, the default, keeps aiortc's behaviour).
        audio_complexity: libopus encoder complexity 0-10 (``OPUS_SET_COMPLEXITY``), or None for the
            library default (10 through FFmpeg, aiortc's behaviour). libwebrtc uses 9 on desktops and 5
            on Android/iOS (``kDefaultComplexity`` in ``api/audio_codecs/opus/audio_encoder_opus_config.cc``).

    Raises:
        TwinInputError (at construction): unknown codec, non-positive sizes/rates, bounds out of order.
    """

    name: str
    video_codec: str
    width_px: int
    height_px: int
    frame_rate_fps: float
    video_min_kbps: float
    video_max_kbps: float
    video_start_kbps: float
    audio_kbps: float
    description: str = ""
    generation: int | None = None
    document_kbps: float | None = None
    audio_frame_ms: float = 20.0
    audio_channels: int = 2
    audio_complexity: int | None = None

    def __post_init__(self) -> None:
        if self.video_codec not in _VIDEO_CODECS:
            raise TwinInputError(
                f"profile {self.name!r}: video_codec must be one of {', '.join(_VIDEO_CODECS)}, got {self.video_codec!r}"
            )
        for field_name in (
            "width_px", "height_px", "frame_rate_fps", "video_min_kbps", "video_max_kbps", "video_start_kbps",
            "audio_kbps",
        ):
            value = getattr(self, field_name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise TwinInputError(f"profile {self.name!r}: {field_name} must be > 0, got {value!r}")
        if not self.video_min_kbps <= self.video_start_kbps <= self.video_max_kbps:
            raise TwinInputError(
                f"profile {self.name!r}: need video_min_kbps <= video_start_kbps <= video_max_kbps, got "
                f"{self.video_min_kbps} / {self.video_start_kbps} / {self.video_max_kbps}"
            )

        if self.audio_frame_ms not in (10.0, 20.0, 40.0, 60.0):
            raise TwinInputError(f"profile {self.name!r}: audio_frame_ms must be 10, 20, 40 or 60 (Opus frame "
                                 f"sizes), got {self.audio_frame_ms!r}")
        if self.audio_channels not in (1, 2):
            raise TwinInputError(f"profile {self.name!r}: audio_channels must be 1 or 2, got {self.audio_channels!r}")
        if self.audio_complexity is not None and (
            isinstance(self.audio_complexity, bool) or not isinstance(self.audio_complexity, int)
            or not 0 <= self.audio_complexity <= 10
        ):
            raise TwinInputError(f"profile {self.name!r}: audio_complexity must be an integer 0-10 or None, "
                                 f"got {self.audio_complexity!r}")
        if self.document_kbps is not None and not (math.isfinite(self.document_kbps) and self.document_kbps > 0):
            raise TwinInputError(f"profile {self.name!r}: document_kbps must be > 0 or None, got {self.document_kbps!r}")

    @property
    def pixels(self) -> int:
        return int(self.width_px * self.height_px)


PROFILES: dict[str, EncoderProfile] = {
    p.name: p
    for p in (
        EncoderProfile(
            name="gen1",
            video_codec="VP8",
            width_px=320,
            height_px=240,
            frame_rate_fps=15.0,
            video_min_kbps=20.0,
            video_max_kbps=32.0,
            video_start_kbps=32.0,
            audio_kbps=16.0,
            audio_frame_ms=60.0,
            audio_channels=1,
            audio_complexity=10,
            document_kbps=16.0,
            description=(
                "Generation 1, fits a 128 kbit/s uplink once the ATM cell tax is counted: VP8 320x240@15, "
                "video 20-32 kbit/s, Opus 16 kbit/s mono in 60 ms frames at complexity 10, document uploads paced at 16 kbit/s. "
                "docs/facts.md quotes a 50 kbit/s video cap with 20 ms Opus, an IP-level figure: over PPPoE LLC "
                "each 20 ms Opus packet costs 3 ATM cells (64 kbit/s of sync rate) and twin emulate measured "
                "a standing queue of ~1 s with it (CHOICES, measured with twin emulate)."
            ),
            generation=1,
        ),
        EncoderProfile(
            name="gen2",
            video_codec="H264",
            width_px=352,
            height_px=288,
            frame_rate_fps=25.0,
            video_min_kbps=96.0,
            video_max_kbps=768.0,
            video_start_kbps=256.0,
            audio_kbps=24.0,
            audio_channels=1,
            audio_complexity=10,
            description=(
                "Generation 2, interoperable with standard videoconference systems: H.264 CIF@25, "
                "96-768 kbit/s, Opus 24 mono at complexity 10 (CHOICES, see module docstring)."
            ),
            generation=2,
        ),
        EncoderProfile(
            name="aiortc-stock",
            video_codec="VP8",
            width_px=640,
            height_px=480,
            frame_rate_fps=30.0,
            video_min_kbps=250.0,
            video_max_kbps=1500.0,
            video_start_kbps=500.0,
            audio_kbps=96.0,
            description=(
                "aiortc 1.16 defaults: VP8 250/500/1500 kbit/s (codecs/vpx.py), Opus 96 fixed (codecs/opus.py), "
                "640x480@30 (VideoStreamTrack)."
            ),
        ),
    )
}
"""Built-in profiles by name (see the module docstring for provenance)."""

GENERATION_PROFILES: dict[int, str] = {1: "gen1", 2: "gen2"}
"""Profile name used by each kiosk generation."""


def get_profile(name: str) -> EncoderProfile:
    """The built-in profile called ``name``.

    Raises:
        TwinInputError: unknown name, listing the known ones.
    """
    try:
        return PROFILES[name]
    except KeyError:
        raise TwinInputError(f"unknown encoder profile {name!r}; known profiles: {', '.join(PROFILES)}") from None


def profile_for_generation(generation: int) -> EncoderProfile:
    """The profile of kiosk ``generation`` (1 or 2).

    Raises:
        TwinInputError: unknown generation, listing the known ones.
    """
    try:
        return PROFILES[GENERATION_PROFILES[generation]]
    except (KeyError, TypeError):
        known = ", ".join(str(g) for g in GENERATION_PROFILES)
        raise TwinInputError(f"unknown kiosk generation {generation!r}; known generations: {known}") from None


VIDEO_OPERATING_POINTS_KBPS: dict[str, dict[float, float]] = {
    "gen1": {128.0: 32.0, 256.0: 96.0},
}
"""Video bitrate cap (kbit/s) a profile uses per uplink sync rate (kbit/s), measured: the highest cap of
a sweep on the emulator at which the calls meet the interview target both without a document and with a
scan in flight (docs/operating-points.md, ``python -m emulators.operating_points``); a profile absent here
keeps its own bounds. gen1: 32 kbit/s on a 128 kbit/s uplink (48 loses frames with a scan in flight, 96
pushes the p95 delay to 461 ms without one), 96 kbit/s on 256 (every cap of the grid, 16-96, meets the
target; 96 is the top of the grid); on a 64 kbit/s uplink no cap does (audio and video alone overflow it:
9 fps, 7 s of queue), so none is set. gen2 is not capped: on a 256 kbit/s uplink caps of 96-192 kbit/s
keep the p95 delay at 102-182 ms without a document (256: 404 ms; its default 768: 2.4 s in that sweep,
361-410 ms over the calibration's calls), but with its unpaced scan in flight caps up to 256 pause the
video (384 and 768 do not), no cap meets the target in both conditions, and a cap costs more usable interviews than
it saves (measured: 50 % instead of 70 % usable in 2009-2012); on 800 kbit/s every cap meets it."""


def profile_for_line(profile: EncoderProfile, up_kbps: float, points_of: str | None = None) -> EncoderProfile:
    """``profile`` with the video cap measured for an uplink of ``up_kbps`` (:data:`VIDEO_OPERATING_POINTS_KBPS`):
    the point of the fastest measured uplink not faster than ``up_kbps`` (a faster line carries at least
    what a slower one does); below the slowest measured uplink, or for a profile not swept, ``profile``
    unchanged. The floor and start bitrates follow the cap down. ``points_of``: whose points to use
    (default the profile's name; a profile changed by ``twin emulate`` options uses its base's)."""
    points = VIDEO_OPERATING_POINTS_KBPS.get(points_of or profile.name, {})
    measured = [u for u in points if u <= up_kbps]
    if not measured:
        return profile
    cap = points[max(measured)]
    if cap == profile.video_max_kbps:  # the profile's own bound is the measured point: nothing to change
        return profile
    return replace(profile, video_max_kbps=cap, video_start_kbps=cap,
                   video_min_kbps=min(profile.video_min_kbps, cap))
