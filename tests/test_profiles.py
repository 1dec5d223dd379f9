"""Tests of twin.profiles: the built-in profiles match docs/facts.md and validation names the bad field."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from twin.errors import TwinInputError
from twin.line import Encapsulation, atm_wire_bytes
from twin.profiles import PROFILES, EncoderProfile, get_profile, profile_for_generation


def test_gen1_fits_128k_after_the_cell_tax():
    """gen1's media at its caps fit 90% of a 128 kbit/s ATM sync rate over PPPoE LLC (link arithmetic)."""
    p = get_profile("gen1")
    assert (p.video_codec, p.width_px, p.height_px, p.frame_rate_fps) == ("VP8", 320, 240, 15)
    assert profile_for_generation(1) is p
    enc = Encapsulation.PPPOE_LLC
    audio_ip = math.ceil(p.audio_kbps * p.audio_frame_ms / 8) + 58  # IP+UDP+RTP+extensions+SRTP tag
    audio_wire_kbps = atm_wire_bytes(audio_ip, enc) * 8 / p.audio_frame_ms
    video_ip = math.ceil(p.video_max_kbps * 1000 / 8 / p.frame_rate_fps) + 62  # one packet per frame
    video_wire_kbps = atm_wire_bytes(video_ip, enc) * 8 * p.frame_rate_fps / 1000
    assert audio_wire_kbps + video_wire_kbps <= 0.9 * 128
    # the same audio in aiortc's 20 ms frames alone would take half the uplink
    audio20_ip = math.ceil(p.audio_kbps * 20 / 8) + 58
    assert atm_wire_bytes(audio20_ip, enc) * 8 / 20 == pytest.approx(63.6)


def test_gen2_is_h264_and_interoperable():
    p = profile_for_generation(2)
    assert p.name == "gen2" and p.video_codec == "H264" and p.generation == 2


def test_aiortc_stock_bounds():
    p = get_profile("aiortc-stock")
    assert (p.video_min_kbps, p.video_start_kbps, p.video_max_kbps, p.audio_kbps) == (250, 500, 1500, 96)


def test_all_profiles_consistent():
    for name, p in PROFILES.items():
        assert p.name == name
        assert p.video_min_kbps <= p.video_start_kbps <= p.video_max_kbps


def test_unknown_names_list_known():
    with pytest.raises(TwinInputError, match="gen1.*gen2.*aiortc-stock"):
        get_profile("gen3")
    with pytest.raises(TwinInputError, match="1, 2"):
        profile_for_generation(3)


def test_validation():
    base = get_profile("gen1")
    with pytest.raises(TwinInputError, match="video_codec"):
        replace(base, video_codec="MPEG2")
    with pytest.raises(TwinInputError, match="frame_rate_fps"):
        replace(base, frame_rate_fps=0)
    with pytest.raises(TwinInputError, match="video_min_kbps <= video_start_kbps"):
        EncoderProfile("x", "VP8", 320, 240, 15, 60, 50, 55, 16)
