"""Synthetic media: frame numbers survive VP8 coding; content is reproducible from the frame number."""

from __future__ import annotations

import fractions

import av
import numpy as np
import pytest

from emulators.media import (
    BARCODE_BITS,
    SyntheticScene,
    draw_barcode,
    read_barcode,
    speech_reference_16k,
    voice_samples,
)


@pytest.mark.parametrize("size", [(320, 240), (352, 288), (640, 480), (176, 144)])
def test_barcode_round_trip_raw(size):
    w, h = size
    luma = np.full((h, w), 128, np.uint8)
    for n in (0, 1, 2**BARCODE_BITS - 1, 123_456):
        draw_barcode(luma, n)
        assert read_barcode(luma) == n


def test_corrupted_strip_reads_none_not_a_wrong_number():
    scene = SyntheticScene(320, 240)
    luma = scene.luma(77)
    luma[: scene.geometry.block_h_px, :] = 128 + 40  # wipe the number row: bits all read as 1
    assert read_barcode(luma) is None


def test_scene_is_a_function_of_the_frame_number():
    a, b = SyntheticScene(320, 240), SyntheticScene(320, 240)
    assert np.array_equal(a.yuv420p(42), b.yuv420p(42))
    assert not np.array_equal(a.luma(42), a.luma(43))  # it moves


def test_barcode_survives_vp8_at_low_bitrate():
    """Encode 60 frames (jumping numbers, much motion) with libvpx at 50 kbit/s; decode; read back."""
    scene = SyntheticScene(320, 240)
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt = 320, 240, "yuv420p"
    enc.bit_rate = 50_000
    enc.time_base = fractions.Fraction(1, 15)
    enc.options = {"deadline": "realtime", "cpu-used": "-6", "lag-in-frames": "0", "minrate": "50000",
                   "maxrate": "50000", "bufsize": "50000"}
    dec = av.CodecContext.create("libvpx", "r")
    numbers = [i * 37 + 5 for i in range(60)]
    read, psnrs = [], []
    for pts, n in enumerate(numbers):
        frame = scene.video_frame(n)
        frame.pts = pts
        for packet in enc.encode(frame):
            for out in dec.decode(packet):
                y = out.to_ndarray(format="yuv420p")[:240]
                read.append(read_barcode(y))
                ref = scene.luma(read[-1]).astype(float) if read[-1] is not None else None
                if ref is not None:
                    psnrs.append(10 * np.log10(255**2 / np.mean((ref - y) ** 2)))
    assert read == numbers[: len(read)]
    assert len(read) >= 55
    assert 25 < np.mean(psnrs) < 50  # coded, so not identical, but recognisable


def test_voice_is_deterministic_and_continuous():
    a = voice_samples(48_000, 1920)  # 1 s in: past the recording's leading 0.5 s of silence
    b = np.concatenate([voice_samples(48_000, 960), voice_samples(48_960, 960)])
    assert np.array_equal(a, b)
    assert a.dtype == np.int16 and np.abs(a).max() > 1000
    loop = speech_reference_16k().size * 3  # played in a loop
    assert np.array_equal(voice_samples(loop + 48_000, 1920), a)


class _FakeChannel:
    """A data channel whose SCTP stack drains ``drain_bytes`` every ``every_s`` (virtual loop)."""

    def __init__(self, drain_bytes: int, every_s: float) -> None:
        import asyncio

        self.readyState = "open"
        self.bufferedAmount = 0
        self.bufferedAmountLowThreshold = 0
        self.sent: list = []
        self.high = 0
        self._handlers: dict = {}
        self._drain, self._every = drain_bytes, every_s
        self._task = asyncio.get_running_loop().create_task(self._drainer())

    def on(self, event, handler=None):
        self._handlers[event] = handler

    def send(self, data) -> None:
        self.sent.append(data)
        if isinstance(data, bytes):
            self.bufferedAmount += len(data)
            self.high = max(self.high, self.bufferedAmount)

    async def _drainer(self) -> None:
        import asyncio

        while True:
            await asyncio.sleep(self._every)
            before = self.bufferedAmount
            self.bufferedAmount = max(0, before - self._drain)
            if before > self.bufferedAmountLowThreshold >= self.bufferedAmount and "bufferedamountlow" in self._handlers:
                self._handlers["bufferedamountlow"]()


def test_documents_go_as_messages_under_buffered_amount_back_pressure():
    """The sender never lets bufferedAmount pass the watermark by more than one message, waits for
    bufferedamountlow, sends every byte in messages of the asked size, then 'end'."""
    import asyncio

    from emulators.media import DocumentEndpoint, document_bytes
    from emulators.virtual_time import run_virtual

    async def body():
        loop = asyncio.get_running_loop()
        channel = _FakeChannel(drain_bytes=8_000, every_s=0.1)  # 640 kbit/s
        endpoint = DocumentEndpoint(loop.time)
        endpoint.attach(channel)
        transfer = endpoint.send_document("print", 100_000, message_bytes=10_000, buffer_bytes=30_000)
        await asyncio.sleep(30.0)
        channel._task.cancel()
        return channel, transfer

    channel, transfer = run_virtual(body)
    messages = [m for m in channel.sent if isinstance(m, bytes)]
    assert [len(m) for m in messages] == [10_000] * 10 and b"".join(messages) == document_bytes("print", 100_000)
    assert channel.sent[0] == "begin:print:100000" and channel.sent[-1] == "end:print"
    assert channel.high <= 30_000 + 10_000 and transfer.max_buffered_bytes == channel.high
    assert transfer.buffer_waits > 0 and transfer.messages_sent == 10
