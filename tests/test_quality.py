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
    CalibrationRow,
    G1070_H264_BASELINE_VGA_6_INCH,
    G1070_H264_VGA_9_2_INCH,
    G1070_INTEGRATION_2_1_INCH,
    G1070_INTEGRATION_4_2_INCH,
    G1070_MPEG4_QQVGA_2_1_INCH,
    G1070_MPEG4_QVGA_4_2_INCH,
    InterviewQuality,
    OpinionQualityModel,
    QualityModel,
    emodel_delay_impairment,
    emodel_rating,
    g1070_multimedia_quality,
    g1070_video_quality,
    mos_to_r,
    opus_impairment,
    psnr_to_mos,
    mouth_to_ear_ms,
    r_to_mos,
    score_call,
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
    assert math.isclose(q.video_mos_up, g1070_video_quality(q.video_kbps_up, 15, 0))
    # the interview: G.1070's MMq per direction (listening speech of the E-model without delay, the
    # direction's video, the mouth-to-ear delay for both media), the worse direction
    listening = r_to_mos(emodel_rating(0.0, 0.0, *opus_impairment(facts_gen1.audio_kbps)))
    per_direction = [g1070_multimedia_quality(listening, v, d + 60.0, d + 60.0)
                     for v, d in ((q.video_mos_up, q.one_way_delay_ms), (q.video_mos_down, q.one_way_delay_ms_down))]
    assert q.mos == pytest.approx(min(per_direction))


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
                audio_delay_ms_down=30, pesq_up=3.5, pesq_down=3.5, scan_s="nan", print_s="nan", share=1)
    base.update(kw)
    return base


# ---------------------------------------------------------------- G.1070 multimedia integration

_grid = st.floats(1.0, 5.0)


def test_g1070_multimedia_anchor_values():
    """Values of the integration with the 4.2-inch set (hand computation of the four equations)."""
    # MMSV = -0.3255*4 + 0.3309*4 + 0.1494*16 + 0.5457 = 2.9577; MMT = 3.915 - 3.235e-4*300 = 3.81795
    mmsv, mmt = -0.3255 * 4 + 0.3309 * 4 + 0.1494 * 16 + 0.5457, 3.915 - 3.235e-4 * 300
    expected = -0.4457 * mmsv - 0.6638 * mmt + 0.4042 * mmsv * mmt + 2.321
    assert g1070_multimedia_quality(4, 4, 150, 150) == pytest.approx(expected) == pytest.approx(3.033, abs=1e-3)
    assert g1070_multimedia_quality(4.5, 5, 0, 0) == pytest.approx(4.379, abs=1e-3)  # the ceiling of the model
    assert g1070_multimedia_quality(1, 1, 0, 0) == 1.0
    # seconds of delay: MMT at its floor of 1, the media hardly matter any more
    assert 1.4 < g1070_multimedia_quality(4.5, 5, 6000, 7000) < 1.6


@given(sq=st.floats(1.0, 4.5), vq=st.floats(1.0, 5.0), ts=st.floats(0, 3900), tv=st.floats(0, 3900),
       step=st.floats(0.01, 1.0), far=st.floats(0, 30_000))
def test_g1070_multimedia_is_monotone_where_a_score_must_be(sq, vq, ts, tv, step, far):
    """What a multimedia score must do (the check of the grouping of the terms, the coefficients coming
    from one public source): more delay never raises it (anywhere); below 8 s of delay in all, better
    video never lowers it, nor better speech once the video is above 2.2; always in [1, 5]."""
    for c in (G1070_INTEGRATION_4_2_INCH, G1070_INTEGRATION_2_1_INCH):
        q = g1070_multimedia_quality(sq, vq, ts, tv, c)
        assert 1.0 <= q <= 5.0
        assert g1070_multimedia_quality(sq, vq, ts + 100 * step, tv, c) <= q + 1e-12
        assert g1070_multimedia_quality(sq, vq, ts, tv + 100 * step, c) <= q + 1e-12
        assert g1070_multimedia_quality(sq, vq, ts + far, tv + far, c) <= q + 1e-12
        assert g1070_multimedia_quality(sq, min(5.0, vq + step), ts, tv, c) >= q - 1e-12
        if vq >= 2.2:
            assert g1070_multimedia_quality(min(4.5, sq + step), vq, ts, tv, c) >= q - 1e-12


def test_g1070_multimedia_refuses_nonsense():
    for args in ((0.5, 3, 0, 0), (3, 5.5, 0, 0), (3, 3, -1, 0), (3, 3, 0, float("nan"))):
        with pytest.raises(ValueError):
            g1070_multimedia_quality(*args)


def test_measured_call_score_is_the_multimedia_integration():
    """A measured call's MOS per direction is G.1070's MMq of PESQ (listening), the EvalVid video MOS,
    the mouth-to-ear delay and the video's p95 delay; the call's is the worse direction."""
    profile = get_profile("gen1")
    row = CalibrationRow(**{k: (v if k in ("profile", "line") else float(v)) for k, v in _row().items()})
    score = score_call(row, profile)
    up = g1070_multimedia_quality(3.5, 4.0, mouth_to_ear_ms(50, profile.audio_frame_ms), 200)
    down = g1070_multimedia_quality(3.5, 4.0, mouth_to_ear_ms(30, profile.audio_frame_ms), 100)
    assert (score.mos_up, score.mos_down, score.mos) == pytest.approx((up, down, min(up, down)))
    silent = CalibrationRow(**{k: (v if k in ("profile", "line") else float(v))
                               for k, v in _row(pesq_up="nan", audio_delay_ms_up="nan").items()})
    assert score_call(silent, profile).mos_up == g1070_multimedia_quality(1.0, 4.0, 0.0, 200)


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
    q = table.score_kiosk_side(AdslLine("adsl-512-128", 1000), get_profile("gen1"))
    assert isinstance(q, InterviewQuality) and isinstance(table, QualityModel)
    assert q.video_mos_up == 4.0 and q.frame_rate_fps_up == 15 and q.one_way_delay_ms == 350
    assert q.usable == 0.5  # the second call breaks G.114's 400 ms
    assert "adsl-512-128@1000" in q.source and "2 calls" in q.source
    # the mean over the two calls of each call's MMq (the up direction is the worse one in both)
    ta_up = mouth_to_ear_ms(50, get_profile("gen1").audio_frame_ms)
    calls = [g1070_multimedia_quality(3.5, 4.0, ta_up, d) for d in (200, 500)]
    assert q.mos == pytest.approx(sum(calls) / 2)


def test_calibration_same_sync_rates_interpolates_and_refuses(tmp_path):
    path = tmp_path / "cal.csv"
    _write_csv(path, [_row(line="adsl-max", loop_length_m=1000, up_kbps=800, down_kbps=7000, video_mos_up=4.0),
                      _row(line="adsl-max", loop_length_m=3000, up_kbps=700, down_kbps=5000, video_mos_up=3.0),
                      _row(line="adsl-512-128", loop_length_m=4000)])
    table = read_calibration_csv(path)
    gen1 = get_profile("gen1")
    same = table.score_kiosk_side(AdslLine("adsl-512-128", 1500), gen1)  # 128/512 at 1.5 km as at 4 km
    assert "sync rates 128/512" in same.source
    mid = table.score_kiosk_side(AdslLine("adsl-max", 2000), gen1)
    assert "interpolated" in mid.source and 3.0 < mid.video_mos_up < 4.0
    with pytest.raises(TwinInputError, match=r"adsl-max at 6000 m.*outside the measured loop lengths"):
        table.score_kiosk_side(AdslLine("adsl-max", 6000), gen1)
    with pytest.raises(TwinInputError, match=r"adsl-128-64.*not measured"):
        table.score_kiosk_side(AdslLine("adsl-128-64", 1000), gen1)
    with pytest.raises(TwinInputError, match=r"loss 2 % not measured"):
        table.score_kiosk_side(AdslLine("adsl-512-128", 4000, loss_pct=2.0), gen1)
    with pytest.raises(TwinInputError, match="gen2.*gen1"):
        table.score_kiosk_side(AdslLine("adsl-512-128", 4000), get_profile("gen2"))


def test_calibration_shared_line_is_scored_from_rows_measured_at_its_share(tmp_path):
    """A line carrying n concurrent calls is scored from the rows of n calls measured together through it
    (share n), never from the line measured alone; a share not measured is refused with the command that
    measures it; a table written before the share column is read as measured alone."""
    path = tmp_path / "cal.csv"
    offer = {"line": "adsl-2048-256", "loop_length_m": 1500}
    _write_csv(path, [_row(**offer, up_kbps=256, down_kbps=2048),
                      _row(**offer, up_kbps=256, down_kbps=2048, share=2, video_fps_up=9, delay_p95_ms_up=600)])
    table = read_calibration_csv(path)
    gen1, line = get_profile("gen1"), AdslLine("adsl-2048-256", 1500)
    alone, shared = table.score_kiosk_side(line, gen1), table.score_kiosk_side(line.shared_by(2), gen1)
    assert (alone.frame_rate_fps_up, alone.one_way_delay_ms) == (15, 200)
    assert (shared.frame_rate_fps_up, shared.one_way_delay_ms) == (9, 600) and "one of 2 calls" in shared.source
    assert [p.share for p in table.points(gen1)] == [1] and [p.share for p in table.points(gen1, share=2)] == [2]
    with pytest.raises(TwinInputError, match=r"as one of 3 concurrent calls: not measured .*shares measured on adsl-2048-256: 1, 2"
                                             r".*twin calibrate --lines adsl-2048-256@1500/3"):
        table.score_kiosk_side(line.shared_by(3), gen1)
    old = tmp_path / "old.csv"
    _write_csv(old, [_row()], columns=tuple(c for c in CALIBRATION_COLUMNS if c != "share"))
    assert read_calibration_csv(old).rows[0].share == 1
    for bad in ("0", "1.5", "x", "65", ""):
        _write_csv(path, [_row(share=bad)])
        with pytest.raises(TwinInputError, match="line 2, column share"):
            read_calibration_csv(path)
    text = path.read_text().splitlines()
    path.write_text(text[0] + "\n" + text[1].rsplit(",", 1)[0] + "\n")  # a row cut before its share cell
    with pytest.raises(TwinInputError, match="line 2, column share"):
        read_calibration_csv(path)
    with pytest.raises(TwinInputError, match="at most 64 calls through one line"):
        table.score_kiosk_side(line.shared_by(100), gen1)


def test_calibration_scores_the_agents_line_as_a_second_hop_with_directions_swapped(tmp_path):
    """The agent's line is looked up as a kiosk line and read from the other end (its uplink carries the
    agent's media to the citizen): each value of the interview is the worse hop's; the agent's hop counts
    its calls without a document (its documents would cross the other way); an agent line the table
    lacks is refused as the agent's; an agent line that never limits leaves the kiosk's score as it is."""
    path = tmp_path / "cal.csv"
    agent_offer = {"line": "adsl-2048-256", "loop_length_m": 1500, "up_kbps": 256, "down_kbps": 2048}
    _write_csv(path, [
        _row(delay_p95_ms_up=200, delay_p95_ms_down=100),  # the kiosk's line (adsl-512-128)
        # the agent's line: slow and late up (towards the citizen, once swapped), fine down
        _row(**agent_offer, video_fps_up=6, delay_p95_ms_up=3000, pesq_up=1.5, delay_p95_ms_down=60, seed=1),
        _row(**agent_offer, documents=1, seed=2, scan_s=900, print_s=20),  # a scan that never gets through
        _row(line="adsl2plus", loop_length_m=1500, up_kbps=1000, down_kbps=16000, delay_p95_ms_up=50,
             delay_p95_ms_down=50, pesq_up=4.0, pesq_down=4.0, video_mos_up=4.5, video_mos_down=4.5, seed=3),
    ])
    table = read_calibration_csv(path)
    gen1, kiosk_line = get_profile("gen1"), AdslLine("adsl-512-128", 1000)
    kiosk = table.score_kiosk_side(kiosk_line, gen1)
    q = table.score(kiosk_line, AdslLine("adsl-2048-256", 1500), gen1)
    assert (q.frame_rate_fps_up, q.one_way_delay_ms) == (15, 200)  # citizen -> agent: the kiosk's uplink
    assert (q.frame_rate_fps_down, q.one_way_delay_ms_down) == (6, 3000)  # agent -> citizen: the agent's uplink
    assert q.speech_mos_down < 2 < kiosk.speech_mos_down and q.speech_mos == q.speech_mos_down
    assert q.mos < kiosk.mos and "agent's line adsl-2048-256@1500" in q.source and "the agent's line limits" in q.source
    assert q.usable == 0  # its speech towards the citizen; not its scan, which would cross the other way
    fine = table.score(kiosk_line, AdslLine("adsl2plus", 1500), gen1)
    assert fine.mos == kiosk.mos and fine.usable == kiosk.usable and "the kiosk's line limits" in fine.source
    assert (fine.frame_rate_fps_down, fine.one_way_delay_ms_down) == (15, 100)
    with pytest.raises(TwinInputError, match=r"the agent's line: .*adsl-1024-256.*not measured"):
        table.score(kiosk_line, AdslLine("adsl-1024-256", 1500), gen1)


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


def test_pessimistic_bound_stays_on_the_scale(tmp_path):
    """The worst-case bound of a point (worst call or 95 % prediction bound) is no lower than 1 for a
    score and no lower than 0 for a frame rate, however spread the calls (twin plan lines printed 0.90)."""
    path = tmp_path / "cal.csv"
    _write_csv(path, [_row(pesq_up=4.2, video_fps_up=15), _row(seed=1, pesq_up=1.05, video_fps_up=1),
                      _row(seed=2, pesq_up=4.1, video_fps_up=15)])
    point = read_calibration_csv(path).points(get_profile("gen1"))[0]
    assert point.worst["pesq_up"] == 1.0 and point.worst["speech_mos_up"] >= 1.0 and point.worst["mos"] >= 1.0
    assert point.worst["video_fps_up"] == 0.0  # the bound fell below zero; a frame rate does not
    assert point.mean["pesq_up"] == pytest.approx((4.2 + 1.05 + 4.1) / 3)  # means are untouched
