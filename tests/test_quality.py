"""Tests of twin.quality: G.1070 and G.107 reference values, the opinion model's operating point
against hand-computed cell-tax arithmetic, and the calibration table's parsing and lookup."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twin.datafiles import read_calibration_csv
from twin.errors import TwinInputError
from twin.line import AdslLine, Encapsulation, atm_wire_bytes
from twin.profiles import get_profile
from twin.quality import (
    CALIBRATION_COLUMNS,
    CONVERSATION_SPEECH_MOS,
    G1070_H264_BASELINE_VGA_6_INCH,
    G1070_H264_VGA_9_2_INCH,
    G1070_MPEG4_QQVGA_2_1_INCH,
    G1070_MPEG4_QVGA_4_2_INCH,
    InterviewQuality,
    OpinionQualityModel,
    QualityModel,
    emodel_delay_impairment,
    emodel_rating,
    g1070_video_quality,
    mos_to_r,
    opus_impairment,
    psnr_to_mos,
    r_to_mos,
    speech_mos,
)

# ---------------------------------------------------------------- G.1070


def test_g1070_reference_values():
    c = G1070_H264_VGA_9_2_INCH
    assert round(g1070_video_quality(384, 15, 0, c), 3) == 3.282
    assert round(g1070_video_quality(384, 15, 1, c), 3) == 2.987
    assert round(g1070_video_quality(1000, 30, 0, G1070_H264_BASELINE_VGA_6_INCH), 3) == 3.869


def test_g1070_intermediates():
    # docs/facts.md: Ofr 10.47, IOfr 2.373, DFrV 1.286, DPplV 7.217 at Br 384, Fr 15 (9.2-inch set)
    c, br, fr = G1070_H264_VGA_9_2_INCH, 384.0, 15.0
    assert round(c.v1 + c.v2 * br, 2) == 10.47
    assert round(c.v3 - c.v3 / (1 + (br / c.v4) ** c.v5), 3) == 2.373
    assert round(c.v6 + c.v7 * br, 3) == 1.286
    assert round(c.v10 + c.v11 * math.exp(-fr / c.v8) + c.v12 * math.exp(-br / c.v9), 3) == 7.217
    # and the loss term is consistent with them: Vq(1 %) - 1 = (Vq(0) - 1) exp(-1 / DPplV)
    v0, v1 = g1070_video_quality(br, fr, 0, c), g1070_video_quality(br, fr, 1, c)
    assert math.isclose((v1 - 1) / (v0 - 1), math.exp(-1 / 7.2170), rel_tol=1e-3)


def test_g1070_no_video_is_one():
    assert g1070_video_quality(0, 15, 0) == 1.0
    assert g1070_video_quality(100, 0, 0) == 1.0
    with pytest.raises(ValueError):
        g1070_video_quality(-1, 15, 0)


@given(
    st.floats(1, 5000), st.floats(0.1, 60), st.floats(0, 100),
    st.sampled_from([G1070_H264_VGA_9_2_INCH, G1070_H264_BASELINE_VGA_6_INCH, G1070_MPEG4_QVGA_4_2_INCH,
                     G1070_MPEG4_QQVGA_2_1_INCH]),
)
def test_g1070_bounded_and_loss_monotone(br, fr, ppl, c):
    vq = g1070_video_quality(br, fr, ppl, c)
    assert 1.0 <= vq <= 5.0
    assert g1070_video_quality(br, fr, min(100.0, ppl + 1), c) <= vq + 1e-12


# ---------------------------------------------------------------- E-model


def test_emodel_reference_values():
    assert round(emodel_rating(0, 0, ie=0, bpl=4.3), 4) == 93.2060  # Ro - Is - Idle = 93.206
    assert math.isclose(emodel_rating(0, 0, 0, 4.3), 93.2062, abs_tol=3e-4)
    assert round(r_to_mos(90), 2) == 4.34
    assert round(r_to_mos(70), 2) == 3.60
    r = emodel_rating(150, 1.0, ie=0, bpl=25.1)
    assert round(r, 2) == 89.40
    assert round(r_to_mos(r), 2) == 4.32


def test_emodel_pieces():
    assert emodel_delay_impairment(100) == 0.0
    assert emodel_delay_impairment(400) > emodel_delay_impairment(200) > 0
    assert r_to_mos(-5) == 1.0 and r_to_mos(120) == 4.5
    # Ie,eff of G.711 without PLC at 2 % random loss: 95 * 2 / (2 + 4.3)
    assert math.isclose(93.2062 - emodel_rating(0, 2, 0, 4.3), 95 * 2 / 6.3, abs_tol=3e-4)


@given(st.floats(0, 100), st.floats(0, 100))
def test_mos_monotone_in_r(a, b):
    lo, hi = sorted((a, b))
    assert 1.0 <= r_to_mos(lo) <= r_to_mos(hi) + 1e-12 <= 4.5 + 1e-12


def test_opus_assumption_shape():
    assert opus_impairment(96) == (0.0, 25.1)
    ie16, _ = opus_impairment(16)
    assert math.isclose(ie16, 11 * 16 / 24)


# ---------------------------------------------------------------- opinion model


AGENT = AdslLine("adsl-2048-256", 1000)


def test_opinion_model_is_a_quality_model():
    assert isinstance(OpinionQualityModel(), QualityModel)


def test_gen1_on_128k_uplink_cell_tax_arithmetic():
    """Hand computation for a 20 ms-Opus gen1 variant (Opus 16, VP8 <= 50 kbit/s at 15 fps, docs/facts.md's
    caps) on a 512/128 PPPoE LLC line.

    Audio: 40 B payload + 58 B headers = 98 B IP -> 3 cells = 159 B x 50/s = 63.6 kbit/s of wire.
    Budget 0.9 x 128 = 115.2 -> 51.6 kbit/s for video. A 50 kbit/s frame (417 B + 62) needs 11 cells
    = 70.0 kbit/s: too much; the model settles where a frame fits in 8 cells (424 B x 15/s = 50.9):
    frame <= 8 x 48 - 40 - 62 = 282 B -> video <= 282 x 8 x 15 = 33.84 kbit/s.
    """
    kiosk = AdslLine("adsl-512-128", 2000, encapsulation=Encapsulation.PPPOE_LLC)
    assert atm_wire_bytes(98, "pppoe-llc") == 159
    facts_gen1 = replace(get_profile("gen1"), video_max_kbps=50.0, video_start_kbps=50.0, audio_frame_ms=20.0)
    q = OpinionQualityModel().score(kiosk, AGENT, facts_gen1)
    assert 33.8 - 0.2 <= q.video_kbps_up <= 33.84 + 1e-6
    assert q.frame_rate_fps_up == 15.0 and q.loss_pct == 0.0
    assert q.mos == min(q.video_mos_up, q.speech_mos)
    assert math.isclose(q.video_mos_up, g1070_video_quality(q.video_kbps_up, 15, 0))


def test_shipped_gen1_keeps_its_video_cap_on_128k():
    """Shipped gen1 (Opus in 60 ms frames): 120 + 58 = 178 B -> 5 cells = 265 B x 50/3 per s = 35.3 kbit/s
    of wire; a 32 kbit/s frame (267 + 62 B) takes 8 cells = 50.9 kbit/s; 86.2 <= 115.2: the cap holds."""
    kiosk = AdslLine("adsl-512-128", 2000, encapsulation=Encapsulation.PPPOE_LLC)
    q = OpinionQualityModel().score(kiosk, AGENT, get_profile("gen1"))
    assert q.video_kbps_up == get_profile("gen1").video_max_kbps == 32.0
    assert q.frame_rate_fps_up == 15.0 and q.loss_pct == 0.0


def test_stock_aiortc_collapses_on_128k():
    """Stock aiortc: Opus 96 alone is 240 + 58 = 298 B -> 8 cells = 424 B x 50/s = 169.6 kbit/s of wire
    on PPPoE LLC, more than the 128 kbit/s uplink: the queue overflows, the buffer stays full."""
    kiosk = AdslLine("adsl-512-128", 2000)
    q = OpinionQualityModel().score(kiosk, AGENT, get_profile("aiortc-stock"))
    # video 250 kbit/s at 30 fps: 1042 B + 62 = 1104 B -> 24 cells = 1272 B x 30/s = 305.28 kbit/s
    offered = 169.6 + 305.28
    d = 1 - 128 / offered
    assert math.isclose(q.loss_pct, 100 * d, rel_tol=1e-9)
    assert math.isclose(q.frame_rate_fps_up, 30 * (1 - d), rel_tol=1e-9)
    assert q.one_way_delay_ms > 120_000 * 8 / 128  # the full modem buffer drains in 7.5 s
    assert q.mos < 1.1 and q.speech_mos < 1.1


def test_more_uplink_never_hurts():
    model = OpinionQualityModel()
    for profile in ("gen1", "gen2", "aiortc-stock"):
        scores = [model.score(AdslLine(o, 1000), AdslLine("adsl2plus", 500), get_profile(profile)).mos
                  for o in ("adsl-128-64", "adsl-512-128", "adsl-1024-256", "adsl-max", "adsl2plus")]
        assert all(a <= b + 1e-9 for a, b in zip(scores, scores[1:])), (profile, scores)


def test_line_loss_lowers_scores():
    model = OpinionQualityModel()
    clean = model.score(AdslLine("adsl-max", 1000), AGENT, get_profile("gen2"))
    lossy = model.score(AdslLine("adsl-max", 1000, loss_pct=2.0), AGENT, get_profile("gen2"))
    assert math.isclose(lossy.loss_pct, 2.0)
    assert lossy.video_mos_up < clean.video_mos_up and lossy.speech_mos < clean.speech_mos


# ---------------------------------------------------------------- calibration table


def _write_csv(path, rows, columns=CALIBRATION_COLUMNS):
    lines = [",".join(columns)]
    for r in rows:
        lines.append(",".join(str(r.get(c, "")) for c in columns))
    path.write_text("\n".join(lines) + "\n")


def _row(**kw):
    base = dict(profile="gen1", line="adsl-512-128", loop_length_m=1000, up_kbps=128, down_kbps=512, loss_pct=0,
                documents=0, seed=0, video_fps_up=15, video_fps_down=15, video_kbps_up=30, video_kbps_down=30,
                pauses_up=0, pauses_down=0, delay_p95_ms_up=200, delay_p95_ms_down=100, video_mos_up=4.0,
                video_mos_down=4.0, audio_loss_pct_up=0, audio_loss_pct_down=0, audio_delay_ms_up=50,
                audio_delay_ms_down=30, pesq_up=3.5, pesq_down=3.5, scan_s="nan", print_s="nan")
    base.update(kw)
    return base


def test_speech_mos_is_pesq_less_the_delay_impairment():
    assert speech_mos(3.5, 100) == pytest.approx(3.5, abs=1e-6)  # Idd = 0 up to 100 ms
    assert speech_mos(3.5, 400) < speech_mos(3.5, 200) < 3.5
    assert mos_to_r(r_to_mos(70)) == pytest.approx(70, abs=1e-6)
    assert round(CONVERSATION_SPEECH_MOS, 2) == round(r_to_mos(60), 2) == 3.10


def test_evalvid_bands():
    assert [psnr_to_mos(x) for x in (40, 37.5, 33, 28, 22, 15)] == [5, 5, 4, 3, 2, 1]


def test_calibration_exact_match_and_usable(tmp_path):
    path = tmp_path / "cal.csv"
    _write_csv(path, [_row(), _row(seed=1, delay_p95_ms_up=500), _row(line="adsl-1024-256", up_kbps=256)])
    table = read_calibration_csv(path)
    q = table.score(AdslLine("adsl-512-128", 1000), AGENT, get_profile("gen1"))
    assert isinstance(q, InterviewQuality) and isinstance(table, QualityModel)
    assert q.video_mos_up == 4.0 and q.frame_rate_fps_up == 15 and q.one_way_delay_ms == 350
    assert q.usable == 0.5  # the second call breaks G.114's 400 ms
    assert "adsl-512-128@1000" in q.source and "2 calls" in q.source
    assert q.mos == pytest.approx(min(q.speech_mos, 4.0))


def test_calibration_same_sync_rates_interpolates_and_refuses(tmp_path):
    path = tmp_path / "cal.csv"
    _write_csv(path, [_row(line="adsl-max", loop_length_m=1000, up_kbps=800, down_kbps=7000, video_mos_up=4.0),
                      _row(line="adsl-max", loop_length_m=3000, up_kbps=700, down_kbps=5000, video_mos_up=3.0),
                      _row(line="adsl-512-128", loop_length_m=4000)])
    table = read_calibration_csv(path)
    gen1 = get_profile("gen1")
    same = table.score(AdslLine("adsl-512-128", 1500), AGENT, gen1)  # 128/512 at 1.5 km as at 4 km
    assert "sync rates 128/512" in same.source
    mid = table.score(AdslLine("adsl-max", 2000), AGENT, gen1)
    assert "interpolated" in mid.source and 3.0 < mid.video_mos_up < 4.0
    with pytest.raises(TwinInputError, match=r"adsl-max at 6000 m.*outside the measured loop lengths"):
        table.score(AdslLine("adsl-max", 6000), AGENT, gen1)
    with pytest.raises(TwinInputError, match=r"adsl-128-64.*not measured"):
        table.score(AdslLine("adsl-128-64", 1000), AGENT, gen1)
    with pytest.raises(TwinInputError, match=r"loss 2 % not measured"):
        table.score(AdslLine("adsl-512-128", 4000, loss_pct=2.0), AGENT, gen1)
    with pytest.raises(TwinInputError, match="gen2.*gen1"):
        table.score(AdslLine("adsl-512-128", 4000), AGENT, get_profile("gen2"))


def test_calibration_documents_enter_usable(tmp_path):
    path = tmp_path / "cal.csv"
    _write_csv(path, [_row(), _row(documents=1, scan_s=150, print_s=20, delay_p95_ms_up=1500),
                      _row(documents=1, seed=1, scan_s=900, print_s=20)])
    point, _ = read_calibration_csv(path).point(AdslLine("adsl-512-128", 1000), get_profile("gen1"))
    assert point.seeds == 1 and point.usable_share == 0.5 and point.with_documents["scan_s"] == 525


def test_calibration_errors(tmp_path):
    with pytest.raises(TwinInputError, match="missing.csv"):
        read_calibration_csv(tmp_path / "missing.csv")
    no_col = tmp_path / "nocol.csv"
    _write_csv(no_col, [_row()], columns=[c for c in CALIBRATION_COLUMNS if c != "pesq_up"])
    with pytest.raises(TwinInputError, match=r"nocol.csv.*missing column.*pesq_up"):
        read_calibration_csv(no_col)
    bad = tmp_path / "bad.csv"
    _write_csv(bad, [_row(), _row(up_kbps="fast")])
    with pytest.raises(TwinInputError, match=r"bad.csv.*line 3.*up_kbps.*fast"):
        read_calibration_csv(bad)
    out = tmp_path / "out.csv"
    _write_csv(out, [_row(video_mos_up=7)])
    with pytest.raises(TwinInputError, match=r"line 2.*column video_mos_up.*7"):
        read_calibration_csv(out)
    nan = tmp_path / "nan.csv"
    _write_csv(nan, [_row(video_fps_up="nan")])
    with pytest.raises(TwinInputError, match=r"nan.csv.*line 2.*column video_fps_up.*nan"):
        read_calibration_csv(nan)
    empty = tmp_path / "empty.csv"
    _write_csv(empty, [])
    with pytest.raises(TwinInputError, match="no rows"):
        read_calibration_csv(empty)
