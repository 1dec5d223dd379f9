"""Which decoded video frames come from an intact reference chain: keyframes tagged at the decoder.

A VP8 or H.264 inter frame is decoded from earlier frames; once a frame is lost (an outage, a loss burst
that retransmissions did not repair), every frame decoded after it until the next keyframe rests on a
broken reference: libvpx decodes it without complaint, but the picture is wrong. Counting those frames
as frames received inflates the frame rate exactly when the call is broken, so the receiver
(:class:`emulators.metrics.VideoSink`) counts them apart. To do so it needs to know which decoded frames
were keyframes, which PyAV's libvpx decoder does not say (its frames' ``key_frame`` is always False):
:func:`keyframe_tags` wraps the decoders aiortc makes (``aiortc.rtcrtpreceiver.get_decoder``, used by
its decoder thread and by the inline decoder of virtual time) so that each decoded frame is tagged with
the keyframe flag read from its encoded bitstream (:func:`is_keyframe`).

After a long gap the emulated receiver asks for a keyframe instead of repairing the gap
(:func:`keyframe_on_gap`): aiortc 1.16's receiver NACKs every missing packet and its sender keeps 128
packets for retransmission, so after an outage of a few seconds it repairs the gap and shows seconds of
stale video, catching up on a slow uplink, before live video (measured: 2.4 s after a 4 s outage on
128 kbit/s); it sends a PLI only when its 512-packet jitter buffer overflows or a decode fails. A
libwebrtc receiver in that case gives up the old packets and requests a keyframe (its NACK module
clears its list and asks for a keyframe when packets are too old or too many). So when a video packet
arrives after :data:`KEYFRAME_GAP_S` without any and with packets missing, the receiver starts a new
jitter buffer and NACK list there and sends a PLI (RFC 4585 section 6.3.1); the frames decoded before
the keyframe comes are counted as broken.

The rule the sink applies (:meth:`emulators.metrics.VideoSink.on_frame`): a keyframe starts an intact
chain; a frame whose number (read from its barcode) comes right after the previous decoded frame's at
the sender (the :class:`emulators.media.FrameLedger` records the order frames went to the encoder, so a
frame the camera skipped is no gap) keeps the chain as it was; any gap, or an unreadable number,
breaks it until the next keyframe. aiortc encodes every frame it is handed (no frame dropping:
``lag-in-frames 0``, no drop threshold), so a gap is a frame that was sent and not decoded.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

KEYFRAME_GAP_S = 1.0
"""A video receiver that hears nothing for this long (s, call clock) and then sees packets missing gives
the gap up and requests a keyframe (:func:`keyframe_on_gap`)."""

_tags: dict[int, tuple[object, bool]] = {}
_TAGS_KEPT = 256
_lock = threading.Lock()
_users = 0
_original_get_decoder = None


def is_keyframe(codec_name: str, data: bytes) -> bool | None:
    """Whether an encoded frame (aiortc's depayloaded bitstream) is a keyframe; None when unknown.

    VP8 (RFC 6386 section 9.1): bit 0 of the frame tag is 0 for a key frame. H.264 (Annex B byte
    stream, as aiortc's depayloader gives it): an IDR slice (NAL type 5) is present.
    """
    name = codec_name.lower()
    if not data:
        return None
    if name == "vp8":
        return data[0] & 1 == 0
    if name == "h264":
        i = data.find(b"\x00\x00\x01")
        while i >= 0 and i + 3 < len(data):
            if data[i + 3] & 0x1F == 5:
                return True
            i = data.find(b"\x00\x00\x01", i + 3)
        return False
    return None


def decoded_keyframe(frame: object) -> bool | None:
    """The keyframe flag of a frame one of the last 256 wrapped decoders output (None: not tagged)."""
    entry = _tags.get(id(frame))
    if entry is None or entry[0] is not frame:
        return None
    return entry[1]


class _TaggingDecoder:
    """An aiortc decoder whose output frames are tagged with their input's keyframe flag."""

    def __init__(self, inner, codec_name: str) -> None:
        self.inner = inner
        self.codec_name = codec_name

    def decode(self, encoded_frame):
        key = is_keyframe(self.codec_name, encoded_frame.data)
        frames = self.inner.decode(encoded_frame)
        if key is not None:
            with _lock:  # the decoder thread writes, the loop's thread reads
                for frame in frames:
                    _tags[id(frame)] = (frame, key)
                while len(_tags) > _TAGS_KEPT:
                    _tags.pop(next(iter(_tags)))
        return frames

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


@contextlib.contextmanager
def keyframe_tags() -> Iterator[None]:
    """Wrap the decoders aiortc makes while active (process-wide, counted: concurrent calls in one
    process share one patch, removed when the last leaves)."""
    global _users, _original_get_decoder
    import aiortc.rtcrtpreceiver as receiver

    with _lock:
        if _users == 0:
            _original_get_decoder = original = receiver.get_decoder

            def get_decoder(codec):
                return _TaggingDecoder(original(codec), codec.name)

            receiver.get_decoder = get_decoder
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                receiver.get_decoder = _original_get_decoder


_gap_users = 0
_original_handle = None


def _handle_with_gap_rule(original):
    """aiortc's ``RTCRtpReceiver._handle_rtp_packet`` preceded by the gap rule of the module docstring."""
    import asyncio

    from aiortc.codecs import is_rtx
    from aiortc.jitterbuffer import JitterBuffer
    from aiortc.rtcrtpreceiver import NackGenerator
    from aiortc.utils import uint16_add

    async def handle(self, packet, arrival_time_ms):
        if self._RTCRtpReceiver__kind != "video":
            return await original(self, packet, arrival_time_ms)
        now = asyncio.get_running_loop().time()
        last = getattr(self, "_twin_last_video_s", None)
        self._twin_last_video_s = now
        codec = self._RTCRtpReceiver__codecs.get(packet.payload_type)
        nack = self._RTCRtpReceiver__nack_generator
        gap = (last is not None and now - last >= KEYFRAME_GAP_S and codec is not None and not is_rtx(codec)
               and nack is not None and nack.max_seq is not None
               and packet.sequence_number != uint16_add(nack.max_seq, 1))
        if gap:
            self._RTCRtpReceiver__jitter_buffer = JitterBuffer(capacity=self._RTCRtpReceiver__jitter_buffer.capacity,
                                                               is_video=True)
            self._RTCRtpReceiver__nack_generator = NackGenerator()
            self.twin_gap_plis = getattr(self, "twin_gap_plis", 0) + 1
        await original(self, packet, arrival_time_ms)
        if gap:
            await self._send_rtcp_pli(packet.ssrc)

    return handle


@contextlib.contextmanager
def keyframe_on_gap() -> Iterator[None]:
    """Apply the receiver's gap rule (module docstring) to every aiortc receiver while active
    (process-wide, counted like :func:`keyframe_tags`)."""
    global _gap_users, _original_handle
    from aiortc.rtcrtpreceiver import RTCRtpReceiver

    with _lock:
        if _gap_users == 0:
            _original_handle = RTCRtpReceiver._handle_rtp_packet
            RTCRtpReceiver._handle_rtp_packet = _handle_with_gap_rule(_original_handle)
        _gap_users += 1
    try:
        yield
    finally:
        with _lock:
            _gap_users -= 1
            if _gap_users == 0:
                RTCRtpReceiver._handle_rtp_packet = _original_handle
