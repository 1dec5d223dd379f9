"""Encoder profiles applied to aiortc: module constants changed inside the context, restored after."""

from __future__ import annotations

import pytest
from aiortc import RTCPeerConnection
from aiortc.codecs import h264, opus, vpx

from emulators.encoder_setup import codec_name, encoder_limits, video_bounds_bps, video_codec_preferences
from twin.profiles import get_profile


def test_constants_set_inside_and_restored_after():
    before = {m: (m.MIN_BITRATE, m.DEFAULT_BITRATE, m.MAX_BITRATE) for m in (vpx, h264)}
    gen1 = get_profile("gen1")
    with encoder_limits(gen1) as applied:
        for m in (vpx, h264):
            assert (m.MIN_BITRATE, m.DEFAULT_BITRATE, m.MAX_BITRATE) == (
                gen1.video_min_kbps * 1000, gen1.video_start_kbps * 1000, gen1.video_max_kbps * 1000)
        assert applied.audio_bps == gen1.audio_kbps * 1000
        # The real aiortc code paths obey them: REMB setter clamps, Opus encoder starts at the profile rate.
        enc = vpx.Vp8Encoder()
        assert enc.target_bitrate == gen1.video_start_kbps * 1000
        enc.target_bitrate = 2_000_000
        assert enc.target_bitrate == gen1.video_max_kbps * 1000
        enc.target_bitrate = 1_000
        assert enc.target_bitrate == gen1.video_min_kbps * 1000
        assert opus.OpusEncoder().codec.bit_rate == gen1.audio_kbps * 1000
    after = {m: (m.MIN_BITRATE, m.DEFAULT_BITRATE, m.MAX_BITRATE) for m in (vpx, h264)}
    assert after == before
    assert opus.OpusEncoder().codec.bit_rate == 96_000


def _opus_payloads(encoder) -> list[bytes]:
    """Nine 20 ms mono frames of noise through ``encoder``; the Opus packets it emits."""
    import fractions

    import numpy as np
    from av import AudioFrame

    out = []
    for k in range(9):
        samples = np.random.default_rng(k).integers(-3000, 3000, 960).astype("int16").reshape(1, -1)
        frame = AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 48_000, k * 960, fractions.Fraction(1, 48_000)
        out += encoder.encode(frame)[0]
    return out


def test_opus_frame_duration_applied_and_restored():
    """gen1 sends Opus in 60 ms frames: the encoder emits one packet per three 20 ms input frames."""
    with encoder_limits(get_profile("gen1")) as applied:
        assert applied.audio_frame_ms == 60.0
        assert len(_opus_payloads(opus.OpusEncoder())) == 3
    assert len(_opus_payloads(opus.OpusEncoder())) == 9


def test_opus_channels_follow_the_profile_and_decode_with_aiortc():
    """gen1 sends mono Opus (TOC stereo flag clear, RFC 6716 section 3.1) that aiortc's decoder plays;
    aiortc-stock keeps aiortc's stereo."""
    from aiortc.jitterbuffer import JitterFrame

    with encoder_limits(get_profile("gen1")) as applied:
        assert (applied.audio_channels, applied.audio_complexity) == (1, 10)
        mono = _opus_payloads(opus.OpusEncoder())
    assert mono and all(p[0] & 0x04 == 0 for p in mono)
    decoder = opus.OpusDecoder()
    decoded = [f for k, p in enumerate(mono) for f in decoder.decode(JitterFrame(data=p, timestamp=k * 2880))]
    assert sum(f.samples for f in decoded) == 3 * 2880
    with encoder_limits(get_profile("aiortc-stock")):
        stereo = _opus_payloads(opus.OpusEncoder())
    assert stereo and all(p[0] & 0x04 for p in stereo)


def test_constants_restored_when_the_body_raises():
    before = vpx.MAX_BITRATE
    with pytest.raises(RuntimeError), encoder_limits(get_profile("gen2")):
        assert vpx.MAX_BITRATE == 768_000
        raise RuntimeError("boom")
    assert vpx.MAX_BITRATE == before


def test_stock_profile_is_aiortc_defaults():
    assert video_bounds_bps(get_profile("aiortc-stock")) == (vpx.MIN_BITRATE, vpx.DEFAULT_BITRATE, vpx.MAX_BITRATE)


def test_codec_preferences_follow_the_profile():
    assert codec_name(get_profile("gen1")) == "vp8"
    assert codec_name(get_profile("gen2")) == "h264"
    prefs = video_codec_preferences(get_profile("gen2"))
    assert {c.mimeType for c in prefs} == {"video/H264", "video/rtx"}
    with pytest.raises(ValueError):
        codec_name(type("FakeProfile", (), {"video_codec": "AV1"})())


def test_offer_lists_only_the_preferred_codec():
    import asyncio

    from emulators.encoder_setup import apply_codec_preferences
    from emulators.media import FrameLedger, SyntheticCameraTrack, SyntheticScene

    async def offer_sdp() -> str:
        pc = RTCPeerConnection()
        pc.addTrack(SyntheticCameraTrack(SyntheticScene(320, 240), 15, FrameLedger()))
        apply_codec_preferences(pc, get_profile("gen2"))
        offer = await pc.createOffer()
        await pc.close()
        return offer.sdp

    sdp = asyncio.run(offer_sdp())
    assert "H264/90000" in sdp and "VP8/90000" not in sdp
