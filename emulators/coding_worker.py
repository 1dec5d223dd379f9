"""Encoding of a virtual-time call in a second process, ahead of the call (VP8 speculatively, one
frame; the synthetic voice, many frames).

Why: a virtual-time call runs on one core, and aiortc's VP8 encoder (PyAV, which holds the GIL) is
about a quarter of its CPU. The synthetic camera's frame ``n`` is a function of ``n``
(:class:`emulators.media.SyntheticScene`), so a forked worker can render and encode frame ``n + 1``
while the call's loop works through the 66 ms of virtual time before it asks for it, and send it to
the call unasked. The worker holds the real libvpx contexts, in aiortc's own ``Vp8Encoder`` objects
driven through aiortc's own ``Vp8Encoder.encode``. For each frame the call's encoder either accepts
the speculative packets (a one-way message; the worker then encodes the next frame) or, when they do not
answer its request (frame number, pts, keyframe flag, target bitrate, picture id), asks for the real
encode and waits for it.

Exactness: libvpx is deterministic for a given context and input sequence (aiortc uses a fixed speed,
``cpu-used -6``, one thread at these sizes), and aiortc's ``encode`` decides everything else from the
request: it re-creates the context (a keyframe) when the target bitrate moved by more than 10 %, and
forces a keyframe on a PLI. A speculative frame ``n + 1`` is encoded as the next request would be if
nothing changed (same bitrate, no keyframe). If the request differs only by a bitrate that does not
re-create the context, the speculative packets are the answer; if it re-creates the context, the
speculative state is discarded with the old context; if it asks for a keyframe (or anything else
differs), the worker rebuilds the context by replaying, from its creation, the frames it really
encoded, then encodes the request. The voice (:func:`emulators.media.voice_samples`) is encoded by a
second worker many frames ahead, and sent in batches. Tests compare whole calls with and without the
workers, byte for byte, and the worker's packets with aiortc's inline encoder under bitrate moves and
keyframe requests.

Used by :func:`emulators.virtual_time.deterministic_aiortc` only (virtual time, where coding costs no
call time; the real-time mode keeps encoding inline as aiortc does). Needs the ``fork`` start method
(Linux): the worker inherits aiortc's encoder settings (:func:`emulators.encoder_setup.encoder_limits`) and
imports nothing.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PICTURE_ID_MODULO = 1 << 15  # aiortc's VP8 picture ids are 15-bit


@dataclass
class _Stream:
    """One encoder's state in the worker: aiortc's encoder, the frames encoded since its context was
    created (``log``: ``(n, pts, keyframe, bitrate)``) and the speculative frame, if any (its entry is
    ``log[-1]``): ``spec`` is ``(n, pts, picture_id)`` once sent, ``todo`` what to encode next."""

    scene: Any
    fps: float
    encoder: Any
    log: list = field(default_factory=list)
    spec: tuple | None = None
    todo: tuple | None = None  # (n, pts, picture_id, bitrate) of the next speculative frame


def _encode(stream: _Stream, original_encode: Callable, n: int, pts: int, keyframe: bool, bitrate: int,
            picture_id: int):
    from emulators.media import VIDEO_TIME_BASE

    enc = stream.encoder
    enc.target_bitrate = bitrate
    enc.picture_id = picture_id
    frame = stream.scene.video_frame(n)
    frame.pts, frame.time_base = pts, VIDEO_TIME_BASE
    context = enc.codec
    result = original_encode(enc, frame, keyframe)
    if enc.codec is not context:  # aiortc made a new context: what came before no longer matters
        stream.log = []
    stream.log.append((n, pts, keyframe, bitrate))
    return result


def recreates(context_bitrate: int | None, bitrate: int) -> bool:
    """aiortc's test in ``Vp8Encoder.encode`` for a frame of the same size: a new context when there is
    none or the (clamped) target moved by more than 10 % from the context's bitrate (both in bit/s)."""
    from aiortc.codecs import vpx

    target = max(vpx.MIN_BITRATE, min(bitrate, vpx.MAX_BITRATE))
    return context_bitrate is None or abs(target - context_bitrate) / context_bitrate > 0.1


def _context_bitrate(stream: _Stream) -> int | None:
    codec = stream.encoder.codec
    return None if codec is None else int(codec.bit_rate)


def _serve(stream: _Stream, original_encode: Callable, vpx_class: type, request: tuple):
    """The real encode of ``request``, after dropping an unaccepted speculative frame (replaying the
    context without it unless the request makes a new context anyway)."""
    n, pts, keyframe, bitrate, picture_id = request
    if stream.spec is not None:
        stream.spec = None
        if not recreates(_context_bitrate(stream), bitrate):
            replay, stream.encoder, stream.log = stream.log[:-1], vpx_class(), []
            for rn, rpts, rkey, rbitrate in replay:
                _encode(stream, original_encode, rn, rpts, rkey, rbitrate, 0)
    return _encode(stream, original_encode, n, pts, keyframe, bitrate, picture_id)


def _next(stream: _Stream, n: int, picture_id: int, bitrate: int) -> None:
    from emulators.media import frame_pts

    stream.todo = (n + 1, frame_pts(n + 1, stream.fps), (picture_id + 1) % PICTURE_ID_MODULO, bitrate)


@dataclass
class _Voice:
    """A voice stream in the worker: Opus frames of ``size`` samples encoded in order, ahead of the
    requests (``results``: frame index -> aiortc's ``(payloads, timestamp)``)."""

    size: int
    encoder: Any
    next_index: int = 0
    results: dict = field(default_factory=dict)
    wanted: int = 0  # encode ahead up to this index (exclusive)


VOICE_AHEAD = 64
"""Voice frames the worker encodes ahead of the last one asked for (about 4 s of 60 ms frames)."""

VOICE_BATCH = 32
"""Voice frames sent back per request at most (those already encoded from the one asked for on)."""


def _encode_voice(voice: _Voice, opus_encode: Callable) -> None:
    from emulators.media import voice_frame

    k = voice.next_index
    voice.results[k] = opus_encode(voice.encoder, voice_frame(k, voice.size))
    voice.next_index = k + 1


_PARENT_ENDS: list = []
"""The call side's ends of every worker pipe open in this process. A forked worker closes those it
inherited, so that each pipe's only writer is the call: when the call dies, however it dies, its
workers read end-of-file and exit."""

os.register_at_fork(after_in_child=_PARENT_ENDS.clear)  # a forked child owns none of them (workers get a copy)

REPLY_TIMEOUT_S = 60.0
"""A worker that does not answer within this (wall) time is taken for dead (a frame takes milliseconds)."""


def _worker_main(conn, inherited: list, original_encode: Callable, vpx_class: type, opus_encode: Callable | None,
                 opus_class: type | None) -> None:
    """A worker's loop. Messages in: ``open``, ``accept`` (the speculative frame is taken),
    ``encode`` (answered ``result``), ``voice`` (answered ``voices``), ``close``. While no message waits
    it works ahead: each stream's next VP8 frame (sent as ``spec``), voice frames up to
    :data:`VOICE_AHEAD` past the last asked for."""
    import signal

    # A terminal's Ctrl-C or hang-up, or a kill of the process group, reaches the workers too: the call
    # handles them and closes its workers; a worker never dies of them mid-frame nor prints a traceback.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    die_with_parent()
    for end in inherited:
        end.close()
    try:
        _serve_forever(conn, original_encode, vpx_class, opus_encode, opus_class)
    except (EOFError, OSError):  # the call went away (closed, killed): nothing to report to
        pass
    except BaseException:  # noqa: BLE001 - a worker must not print a traceback: the call reports its death
        pass
    finally:
        os._exit(0)  # skip the interpreter's shutdown (atexit handlers inherited from the call)


def die_with_parent() -> None:
    """Ask the kernel to kill this process when its parent dies, however it dies (``kill -9`` included):
    Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` through ctypes; if the parent is already gone (it died
    before the call), exit now. Elsewhere the pipe's end-of-file still ends the worker."""
    import ctypes
    import signal

    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        return
    if os.getppid() != parent or parent == 1:
        os._exit(0)


def _serve_forever(conn, original_encode: Callable, vpx_class: type, opus_encode: Callable | None,
                   opus_class: type | None) -> None:
    """The worker's message loop (see :func:`_worker_main`); returns on ``close`` or end-of-file."""
    from emulators.media import SyntheticScene

    streams: dict[int, _Stream] = {}
    voices: dict[int, _Voice] = {}
    while True:
        if not conn.poll(0):
            sid, stream = next(((k, st) for k, st in streams.items() if st.todo is not None), (None, None))
            if stream is not None:
                n, pts, picture_id, bitrate = stream.todo
                stream.todo = None
                result = _encode(stream, original_encode, n, pts, False, bitrate, picture_id)
                stream.spec = (n, pts, picture_id)
                conn.send(("spec", sid, (n, pts, picture_id), result, _context_bitrate(stream)))
                continue
            voice = next((v for v in voices.values() if v.next_index < v.wanted), None)
            if voice is not None:
                _encode_voice(voice, opus_encode)
                continue
        try:
            message = conn.recv()
        except EOFError:
            return
        kind = message[0]
        if kind == "close":
            return
        try:
            if kind == "open":
                _, sid, (width, height, seed), fps = message
                streams[sid] = _Stream(SyntheticScene(width, height, seed), fps, vpx_class())
            elif kind == "accept":
                _, sid, n, bitrate = message
                stream = streams[sid]
                if stream.spec is None or stream.spec[0] != n:
                    raise RuntimeError(f"stream {sid}: frame {n} accepted but {stream.spec} was speculated")
                _next(stream, n, stream.spec[2], bitrate)
                stream.spec = None
            elif kind == "encode":
                _, sid, request = message
                stream = streams[sid]
                stream.todo = None
                result = _serve(stream, original_encode, vpx_class, request)
                conn.send(("result", sid, None, result, _context_bitrate(stream)))
                n, _, _, bitrate, picture_id = request
                _next(stream, n, picture_id, bitrate)
            elif kind == "voice":
                _, size, k, settings = message
                voice = voices.get(size)
                if voice is None:
                    voice = voices[size] = _Voice(size, opus_class())
                mine = (voice.encoder.codec.bit_rate, voice.encoder.codec.layout.name)
                if mine != settings:
                    raise RuntimeError(f"voice asked for with Opus settings {settings}, the worker's are {mine}")
                if k < voice.next_index and k not in voice.results:
                    raise RuntimeError(f"voice frame {k} asked for twice")
                while voice.next_index <= k:
                    _encode_voice(voice, opus_encode)
                voice.wanted = max(voice.wanted, k + 1 + VOICE_AHEAD)
                batch = {i: voice.results.pop(i) for i in range(k, min(voice.next_index, k + VOICE_BATCH))}
                conn.send(("voices", None, None, batch, None))
        except Exception as exc:  # noqa: BLE001 - reported to the call, which raises it
            conn.send(("error", None, None, f"{type(exc).__name__}: {exc}", None))


class CodingWorker:
    """The call side: :meth:`encode` stands in for ``Vp8Encoder.encode`` (a forked VP8 worker for all
    the call's encoders) and :meth:`voice` gives the Opus packets of voice frame ``k`` (a forked voice
    worker; used by :class:`emulators.virtual_time.SharedVoiceEncoding`).

    Args:
        original_encode: aiortc's ``Vp8Encoder.encode`` (before any patch), run by the worker.
        vpx_class: aiortc's ``Vp8Encoder``.
        opus_encode, opus_class: aiortc's ``OpusEncoder.encode`` (before any patch) and ``OpusEncoder``
            (its settings are the ones :func:`emulators.encoder_setup.encoder_limits` gave it before the fork);
            None: no voice worker.

    Raises:
        RuntimeError (from ``encode``/``voice``): a frame that does not come from a
        :class:`emulators.media.SyntheticCameraTrack`, or a worker that failed or died.
    """

    def __init__(self, original_encode: Callable, vpx_class: type, opus_encode: Callable | None = None,
                 opus_class: type | None = None) -> None:
        ctx = multiprocessing.get_context("fork")
        args = (original_encode, vpx_class, opus_encode, opus_class)
        # Video and voice apart: a VP8 frame never waits behind voice frames encoded ahead.
        self._video = _Process(ctx, "twin-vp8-worker", args)
        self._voice = _Process(ctx, "twin-opus-worker", args) if opus_class is not None else None
        self._streams: dict[int, tuple] = {}  # id(encoder) -> (encoder, stream id, scene key, fps)
        self._expect: dict[int, int] = {}  # stream id -> frame number the worker speculates
        self._context_bitrate: dict[int, int | None] = {}  # stream id -> bitrate of its libvpx context
        self._specs: dict[int, tuple] = {}  # stream id -> speculative (key, result, context bitrate) received
        self._voice_ready: dict[tuple, tuple] = {}  # (size, index) -> result, sent ahead by the worker
        self.frames = 0
        self.failures: list[str] = []  # what went wrong, for the call's errors (aiortc swallows them)

    def _receive(self, sid: int, kind: str):
        """Read the video worker's messages until one of ``kind`` for stream ``sid`` (keeping other
        streams' speculative frames)."""
        while True:
            got, got_sid, key, value, context_bitrate = self._video.receive()
            if got == "spec":
                self._specs[got_sid] = (key, value, context_bitrate)
                if kind == "spec" and got_sid == sid:
                    return key, value, context_bitrate
            elif got == kind and got_sid == sid:
                return key, value, context_bitrate

    def encode(self, encoder, frame, force_keyframe: bool = False):
        """Stands for ``Vp8Encoder.encode(encoder, frame, force_keyframe)``: aiortc's
        ``(payloads, timestamp)`` for ``frame``, from the speculative encode when it answers the request,
        else encoded on demand.

        Raises:
            RuntimeError: not a :class:`emulators.media.SyntheticCameraTrack` frame, or a worker that
                failed or died (also kept in ``failures``).
        """
        try:
            return self._encode(encoder, frame, force_keyframe)
        except RuntimeError as exc:  # aiortc's sender only logs it and stops: keep it for the call's errors
            self.failures.append(f"VP8 encode: {exc}")
            raise

    def _encode(self, encoder, frame, force_keyframe: bool):
        from emulators.media import frame_origin

        origin = frame_origin(frame)
        if origin is None:
            raise RuntimeError("the VP8 coding worker only encodes SyntheticCameraTrack frames")
        scene_key, n, fps = origin
        entry = self._streams.get(id(encoder))
        if entry is None or entry[0] is not encoder:
            entry = self._streams[id(encoder)] = (encoder, len(self._streams), scene_key, fps)
            self._video.send(("open", entry[1], scene_key, fps))
        elif (scene_key, fps) != entry[2:]:
            raise RuntimeError(f"an encoder fed camera {entry[2]} at {entry[3]} fps got a frame of camera "
                               f"{scene_key} at {fps} fps: the VP8 coding worker cannot switch cameras")
        sid = entry[1]
        bitrate, picture_id = int(encoder.target_bitrate), encoder.picture_id
        if self._expect.get(sid) == n:
            spec = self._specs.pop(sid, None)
            if spec is None or spec[0][0] != n:
                spec = self._receive(sid, "spec")
                self._specs.pop(sid, None)
            (sn, spts, spid), result, context_bitrate = spec
            if (sn, spts, spid) == (n, frame.pts, picture_id) and not force_keyframe and not recreates(
                    self._context_bitrate[sid], bitrate):
                self._video.send(("accept", sid, n, bitrate))
                return self._done(encoder, sid, n, result, context_bitrate)
        self._specs.pop(sid, None)
        self._video.send(("encode", sid, (n, frame.pts, bool(force_keyframe), bitrate, picture_id)))
        _, result, context_bitrate = self._receive(sid, "result")
        self._specs.pop(sid, None)  # a speculation sent before the worker read the request is stale
        return self._done(encoder, sid, n, result, context_bitrate)

    def _done(self, encoder, sid: int, n: int, result, context_bitrate):
        self._context_bitrate[sid] = context_bitrate
        self._expect[sid] = n + 1
        encoder.picture_id = (encoder.picture_id + 1) % PICTURE_ID_MODULO
        self.frames += 1
        return result

    def voice(self, size: int, index: int, settings: tuple[int, str]):
        """aiortc's ``(payloads, timestamp)`` for voice frame ``index`` of ``size`` samples, as a fresh
        ``OpusEncoder`` fed voice frames 0, 1, ... gives it. Each index may be asked for once.
        ``settings``: the asking encoder's ``(bit_rate, layout name)``, which must be the worker's."""
        if self._voice is None:
            raise RuntimeError("this coding worker was made without Opus")
        ready = self._voice_ready.pop((size, index), None)
        if ready is not None:
            return ready
        try:
            self._voice.send(("voice", int(size), int(index), settings))
            _, _, _, batch, _ = self._voice.receive()
        except RuntimeError as exc:
            self.failures.append(f"Opus encode: {exc}")
            raise
        self._voice_ready.update({(size, i): result for i, result in batch.items() if i != index})
        return batch[index]

    def close(self) -> None:
        """Stop both workers (a close message; terminated if still alive 2 s later) and release their pipes."""
        for process in (self._video, self._voice):
            if process is not None:
                process.close()


class _Process:
    """One forked worker running :func:`_worker_main`, and its end of the pipe."""

    def __init__(self, ctx, name: str, args: tuple) -> None:
        self.conn, child = ctx.Pipe()
        _PARENT_ENDS.append(self.conn)
        self.process = ctx.Process(target=_worker_main, args=(child, list(_PARENT_ENDS), *args), name=name,
                                   daemon=True)
        self.process.start()
        child.close()

    def send(self, message: tuple) -> None:
        try:
            self.conn.send(message)
        except OSError as exc:
            raise RuntimeError(f"the coding worker {self.process.name} died (exit code "
                               f"{self.process.exitcode})") from exc

    def receive(self) -> tuple:
        try:
            if not self.conn.poll(REPLY_TIMEOUT_S):
                raise RuntimeError(f"the coding worker {self.process.name} did not answer in {REPLY_TIMEOUT_S:g} s")
            message = self.conn.recv()
        except (EOFError, OSError) as exc:
            raise RuntimeError(f"the coding worker {self.process.name} died (exit code "
                               f"{self.process.exitcode})") from exc
        if message[0] == "error":
            raise RuntimeError(f"the coding worker {self.process.name} failed: {message[3]}")
        return message

    def close(self) -> None:
        try:
            self.conn.send(("close",))
        except OSError:
            pass
        self.process.join(timeout=2.0)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=2.0)
        self.conn.close()
        if self.conn in _PARENT_ENDS:
            _PARENT_ENDS.remove(self.conn)
        if not self.process.is_alive():
            self.process.close()  # release its sentinel descriptor now, not at garbage collection
