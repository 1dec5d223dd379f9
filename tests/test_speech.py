"""PESQ of decoded speech (emulators.speech): known answers on hand-made frame sequences."""

import numpy as np

from emulators.media import speech_reference_16k, voice_samples
from emulators.speech import playout, score_speech

SIZE = 2880  # 60 ms at 48 kHz


def _frames(first: int, last: int, pts0: int = 1000):
    return [(pts0 + k * SIZE, voice_samples(k * SIZE, SIZE).copy()) for k in range(first, last)]


def test_identical_speech_scores_pesq_maximum_and_counts_setup_frames():
    score = score_speech(_frames(3, 330), SIZE, 330, speech_reference_16k())
    assert score.pesq_mos > 4.4 and score.pesq_wb_mos > 4.5  # ceilings: 4.55 (P.862.1), 4.64 (P.862.2)
    assert (score.frames_before, score.frames_missing, score.frames_after) == (3, 0, 0)


def test_lost_frames_are_silence_and_lower_pesq():
    frames = [f for i, f in enumerate(_frames(3, 330)) if i % 10 != 5]
    score = score_speech(frames, SIZE, 330, speech_reference_16k())
    assert score.frames_missing == 33
    assert score.pesq_mos < 2.5


def test_playout_handles_rtp_timestamp_wrap():
    a = np.ones(4, dtype=np.int16)
    signal, missing = playout([(2**32 - 4, a), (4, a)], 4)
    assert signal.size == 12 and missing == 1


def test_too_short_is_not_scored():
    score = score_speech(_frames(0, 20), SIZE, 20, speech_reference_16k())
    assert score.pesq_mos is None
