"""Rate control of the built-in MJPEG video encoder (spice-server's
mjpeg-encoder.c), one instance per stream and client.

The encoder has two knobs: the JPEG quality, one of
:data:`QUALITY_SAMPLES`, and the frame rate (at most 25 fps).  Given a byte
rate budget it picks the best quality that still allows a reasonable frame
rate:

* *quality evaluation*: successive frames are encoded at different
  qualities; from each frame's size and the byte rate it computes the
  frame rate that quality would allow, and settles on the highest quality
  whose rate is acceptable (at least 10 fps above the median quality, 5 fps
  below it, or the source's own rate);
* *frame pacing*: a frame arriving sooner than ``1 / adjusted_fps`` after
  the previous encoded one is dropped; ``adjusted_fps`` is corrected every
  half second so the real average matches the chosen rate;
* *byte rate*: lowered when frames the server queued were replaced before
  they could be sent (more than 10 % over a second: the network is slower
  than the stream) or when the client reports late or shrinking playback
  delay; raised after positive client reports spanning 2-3 s of stable
  playback.  No decrease during the first 3 s (warm-up).

Times are monotonic nanoseconds, multimedia times milliseconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

MAX_FPS = 25
MIN_FPS = 1
QUALITY_SAMPLES = (20, 30, 40, 50, 60, 70, 80)
NUM_QUALITIES = len(QUALITY_SAMPLES)
IMPROVE_QUALITY_FPS_STRICT_TH = 10
IMPROVE_QUALITY_FPS_PERMISSIVE_TH = 5
AVERAGE_SIZE_WINDOW = 3
BIT_RATE_EVAL_MIN_NUM_FRAMES = 3
SERVER_STATUS_EVAL_FPS_INTERVAL = 1
SERVER_STATUS_DOWNGRADE_DROP_FACTOR_TH = 0.1
CLIENT_POSITIVE_REPORT_TIMEOUT = 2000
CLIENT_POSITIVE_REPORT_STRICT_TIMEOUT = 3000
ADJUST_FPS_TIMEOUT = 500
MAX_CLIENT_PLAYBACK_DELAY = 5000
WARMUP_TIME = 3_000_000_000
PLAYBACK_LATENCY_DECREASE_FACTOR = 0.5
VIDEO_VS_AUDIO_LATENCY_FACTOR = 1.25
VIDEO_DELAY_TH = -15
NS = 1_000_000_000

EVAL_SET, EVAL_UPGRADE, EVAL_DOWNGRADE = range(3)
REASON_SIZE_CHANGE, REASON_RATE_CHANGE = range(2)


class _QualityEval:
    def __init__(self) -> None:
        self.type = EVAL_SET
        self.reason = REASON_SIZE_CHANGE
        self.size_by_quality = [0] * NUM_QUALITIES
        self.min_quality_id = 0
        self.min_quality_fps = 0
        self.max_quality_id = NUM_QUALITIES - 1
        self.max_quality_fps = MAX_FPS
        self.max_sampled_fps = 0
        self.max_sampled_fps_quality_id = 0


class MjpegRateControl:
    """``source_fps()`` gives the stream's input rate and ``roundtrip_ms()``
    the client's round trip (both read on every decision)."""

    def __init__(self, start_bit_rate: int, source_fps: Callable[[], int] = lambda: MAX_FPS,
                 roundtrip_ms: Callable[[], int] = lambda: 0,
                 clock: Callable[[], int] = time.monotonic_ns) -> None:
        self.source_fps = source_fps
        self.roundtrip_ms = roundtrip_ms
        self.clock = clock
        self.byte_rate = start_bit_rate // 8
        self.start_bit_rate = start_bit_rate
        self.quality_id = NUM_QUALITIES // 2
        self.fps = 5
        self.adjusted_fps = 0.0
        self.adjusted_fps_start = 0
        self.adjusted_fps_frames = 0
        self.base_enc_size = 0
        self.last_enc_size = 0
        self.recent_sum = 0
        self.recent_frames = 0
        self.frames_encoded = 0  # since the last server-drop evaluation
        self.frames_dropped = 0
        self.max_video_latency = 0
        self.max_audio_latency = 0
        # the frames encoded since the last byte-rate change
        self.change_start = 0
        self.change_start_mm = 0
        self.last_frame_time = 0
        self.change_frames = 0
        self.change_bytes = 0
        self.was_upgraded = False
        self.eval = _QualityEval()
        self.evaluating = False
        self._reset_quality(NUM_QUALITIES // 2, 5, 0)
        self.evaluating = True
        self.eval.type = EVAL_SET
        self.eval.reason = REASON_RATE_CHANGE
        self.warmup_start = clock()
        # statistics
        self.frames_out = 0
        self.frames_paced_out = 0
        self.quality_sum = 0

    @property
    def quality(self) -> int:
        return QUALITY_SAMPLES[self.quality_id]

    @property
    def bit_rate(self) -> int:
        return self.byte_rate * 8

    # -- per frame ---------------------------------------------------------------------

    def start_frame(self, mm_time: int) -> int | None:
        """The JPEG quality for the next frame, or None to drop it."""
        now = self.clock()
        if not self.adjusted_fps_start:
            self.adjusted_fps_start = now
        self._adjust_fps(now)
        if now - self.last_frame_time < NS / self.adjusted_fps:
            self.frames_paced_out += 1
            return None
        self._adjust_to_bit_rate()
        if not self.evaluating or self.eval.reason == REASON_SIZE_CHANGE:
            if not self.change_start:
                self.change_start = now
                self.change_start_mm = mm_time
            self.last_frame_time = now
        quality = QUALITY_SAMPLES[self.quality_id]
        self.quality_sum += quality
        return quality

    def end_frame(self, size: int) -> None:
        self.last_enc_size = size
        self.frames_encoded += 1
        self.frames_out += 1
        if not self.evaluating or self.eval.reason == REASON_SIZE_CHANGE:
            if not self.evaluating:
                if self.recent_frames >= AVERAGE_SIZE_WINDOW:
                    self.recent_frames = 0
                    self.recent_sum = 0
                self.recent_sum += size
                self.recent_frames += 1
                self.adjusted_fps_frames += 1
            self.change_bytes += size
            self.change_frames += 1

    def server_frame_drop(self) -> None:
        """A frame queued for the client was replaced before it was sent."""
        self.frames_dropped += 1
        self._process_server_drops()

    # -- quality and frame rate ------------------------------------------------------

    def _max_fps(self, frame_size: int) -> int:
        return self.byte_rate // frame_size if frame_size else MAX_FPS

    def _reset_quality(self, quality_id: int, fps: int, frame_size: int) -> None:
        self.evaluating = False
        if self.quality_id != quality_id:
            self.last_enc_size = 0
        if self.eval.reason == REASON_RATE_CHANGE:
            self.frames_encoded = 0
            self.frames_dropped = 0
        self.quality_id = quality_id
        self.eval = _QualityEval()
        ratio = self.adjusted_fps / self.fps if self.adjusted_fps else 1.5
        self.fps = min(MAX_FPS, max(MIN_FPS, fps))
        self.adjusted_fps = self.fps * ratio
        self.adjusted_fps_start = 0
        self.adjusted_fps_frames = 0
        self.base_enc_size = frame_size
        self.recent_sum = 0
        self.recent_frames = 0

    def _evaluated(self, quality_id: int) -> bool:
        return self.eval.size_by_quality[quality_id] != 0

    def _eval_quality(self) -> None:
        ev = self.eval
        size = ev.size_by_quality[self.quality_id]
        if size == 0:
            return
        src_fps = self.source_fps()
        fps = self._max_fps(size)
        if fps > ev.max_sampled_fps or (
                (fps == ev.max_sampled_fps or fps >= src_fps)
                and self.quality_id > ev.max_sampled_fps_quality_id):
            ev.max_sampled_fps = fps
            ev.max_sampled_fps_quality_id = self.quality_id
        q = self.quality_id
        if q > NUM_QUALITIES // 2 and fps < IMPROVE_QUALITY_FPS_STRICT_TH and fps < src_fps:
            # above the median quality a good frame rate comes first
            self.quality_id -= 1
            if not self._evaluated(q - 1):
                return
        elif (fps > IMPROVE_QUALITY_FPS_PERMISSIVE_TH
              and fps >= 0.66 * ev.min_quality_fps) or fps >= src_fps:
            if not (q + 1 == NUM_QUALITIES or q >= ev.max_quality_id or self._evaluated(q + 1)
                    or (q == NUM_QUALITIES // 2 and fps < IMPROVE_QUALITY_FPS_STRICT_TH
                        and fps < src_fps)):
                self.quality_id += 1
                return
        else:  # very low frame rate: a worse quality may help
            if not (q == 0 or q <= ev.min_quality_id):
                self.quality_id -= 1
                if not self._evaluated(q - 1):
                    return
        self._complete_eval()

    def _complete_eval(self) -> None:
        ev = self.eval
        final = self.quality_id
        if ev.max_sampled_fps:
            # sizes need not shrink with quality: keep a better sampled one
            final = max(final, ev.max_sampled_fps_quality_id)
        size = ev.size_by_quality[final]
        fps = self._max_fps(size)
        if final == ev.min_quality_id:
            fps = max(fps, ev.min_quality_fps)
        if final == ev.max_quality_id:
            fps = min(fps, ev.max_quality_fps)
        self._reset_quality(final, fps, size)
        self.recent_sum = size
        self.recent_frames = 1
        log.debug("mjpeg: quality %d at %d fps (%.2f Mbit/s)", self.quality, self.fps,
                  self.bit_rate / 1e6)

    def _set_upgrade(self, reason: int, min_quality_id: int, min_fps: int) -> None:
        self.evaluating = True
        self.eval.type = EVAL_UPGRADE
        self.eval.reason = reason
        self.eval.min_quality_id = min_quality_id
        self.eval.min_quality_fps = min_fps

    def _set_downgrade(self, reason: int, max_quality_id: int, max_fps: int) -> None:
        self.evaluating = True
        self.eval.type = EVAL_DOWNGRADE
        self.eval.reason = reason
        self.eval.max_quality_id = max_quality_id
        self.eval.max_quality_fps = max_fps

    def _adjust_to_bit_rate(self) -> None:
        if not self.last_enc_size:
            return
        if self.evaluating:
            self.eval.size_by_quality[self.quality_id] = self.last_enc_size
            self._eval_quality()
            return
        if not self.recent_frames:
            return
        avg = 0
        if not (self.recent_frames < AVERAGE_SIZE_WINDOW and self.recent_frames < self.fps):
            avg = self.recent_sum // self.recent_frames
            new_fps = self._max_fps(avg)
            src_fps = self.source_fps()
            if new_fps > self.fps and (self.fps < src_fps or self.quality_id < NUM_QUALITIES - 1):
                self._set_upgrade(REASON_SIZE_CHANGE, self.quality_id, self.fps)
            elif new_fps < self.fps and new_fps < src_fps:
                self._set_downgrade(REASON_SIZE_CHANGE, self.quality_id, self.fps)
        if self.evaluating:
            self.eval.size_by_quality[self.quality_id] = avg
            self._eval_quality()
        else:
            self._process_server_drops()

    def _adjust_fps(self, now: int) -> None:
        passed_ms = (now - self.adjusted_fps_start) // 1_000_000
        if self.evaluating or passed_ms <= ADJUST_FPS_TIMEOUT or \
                passed_ms <= 1000 / self.adjusted_fps:
            return
        avg_fps = self.adjusted_fps_frames * 1000 / passed_ms
        ratio = avg_fps / self.fps
        if avg_fps + 0.5 < self.fps and self.source_fps() > avg_fps:
            new = self.adjusted_fps / ratio if avg_fps else self.adjusted_fps * 2
            self.adjusted_fps = min(self.fps * 2, new)
        elif self.fps + 0.5 < avg_fps:
            self.adjusted_fps = max(self.fps, self.adjusted_fps / ratio)
        self.adjusted_fps_start = now
        self.adjusted_fps_frames = 0

    # -- byte rate ---------------------------------------------------------------------

    def _stop_eval(self) -> None:
        if not self.evaluating:
            return
        ev = self.eval
        if ev.type == EVAL_UPGRADE:
            self._reset_quality(ev.min_quality_id, ev.min_quality_fps, 0)
        elif ev.type == EVAL_DOWNGRADE:
            self._reset_quality(ev.max_quality_id, ev.max_quality_fps, 0)
        else:
            self._reset_quality(NUM_QUALITIES // 2, MAX_FPS // 2, 0)

    def _measured(self) -> tuple[int, int, int] | None:
        """(byte rate, fps, average frame size) since the last rate change."""
        if not (self.change_frames > BIT_RATE_EVAL_MIN_NUM_FRAMES
                or self.change_frames > self.fps):
            return None
        seconds = max(1e-9, (self.last_frame_time - self.change_start) / NS)
        return (int(self.change_bytes / seconds), int(self.change_frames / seconds),
                self.change_bytes // self.change_frames)

    def _restart_measure(self, upgraded: bool) -> None:
        self.change_start = 0
        self.change_start_mm = 0
        self.last_frame_time = 0
        self.change_frames = 0
        self.change_bytes = 0
        self.was_upgraded = upgraded

    def _decrease_bit_rate(self) -> None:
        self._stop_eval()
        self.max_video_latency = 0
        self.max_audio_latency = 0
        if self.warmup_start:
            if self.clock() - self.warmup_start < WARMUP_TIME:
                return
            self.warmup_start = 0
        m = self._measured()
        if m is not None:
            rate, _fps, decrease = m
        else:
            rate = self.byte_rate
            decrease = rate // max(1, self.fps)
        rate = min(self.byte_rate, rate)
        if decrease >= rate:
            decrease = rate // 2
        self.byte_rate = rate - decrease
        log.debug("mjpeg: byte rate down to %.2f Mbit/s", self.bit_rate / 1e6)
        self._restart_measure(False)
        self._set_downgrade(REASON_RATE_CHANGE, self.quality_id, self.fps)

    def _increase_bit_rate(self) -> None:
        m = self._measured()
        if m is None:
            return
        self._stop_eval()
        rate, _fps, increase = m
        if rate + increase >= self.byte_rate:
            self.byte_rate = min(rate, self.byte_rate) + increase
        log.debug("mjpeg: byte rate up to %.2f Mbit/s", self.bit_rate / 1e6)
        self._restart_measure(True)
        self._set_upgrade(REASON_RATE_CHANGE, self.quality_id, self.fps)

    def _process_server_drops(self) -> None:
        fps = min(self.fps, self.source_fps())
        if self.frames_encoded < fps * SERVER_STATUS_EVAL_FPS_INTERVAL:
            return
        total = self.frames_dropped + self.frames_encoded
        if self.frames_dropped / total > SERVER_STATUS_DOWNGRADE_DROP_FACTOR_TH:
            self._decrease_bit_rate()
        self.frames_encoded = 0
        self.frames_dropped = 0

    def min_playback_delay(self, frame_size: int) -> int:
        """Milliseconds of client buffering this stream needs."""
        latency = self.roundtrip_ms() // 2
        if not frame_size or not self.byte_rate:
            return latency
        one_frame = frame_size * 1000 // self.byte_rate
        return min(one_frame * 2 + latency, MAX_CLIENT_PLAYBACK_DELAY)

    def client_report(self, num_frames: int, num_drops: int, start_mm: int, end_mm: int,
                      end_frame_delay: int, audio_delay: int) -> None:
        """A STREAM_REPORT from the client."""
        if self.evaluating and self.eval.type == EVAL_DOWNGRADE and \
                self.eval.reason == REASON_RATE_CHANGE:
            return
        avg = self.recent_sum // self.recent_frames if self.recent_frames else 0
        min_delay = self.min_playback_delay(avg)
        delay_small = False
        if min_delay > end_frame_delay and (
                self.quality_id != NUM_QUALITIES - 1
                or self.fps < min(self.source_fps(), MAX_FPS) or end_frame_delay < 0):
            delay_small = True
        if end_frame_delay > 0 and \
                audio_delay < PLAYBACK_LATENCY_DECREASE_FACTOR * self.max_audio_latency and \
                end_frame_delay > VIDEO_VS_AUDIO_LATENCY_FACTOR * audio_delay:
            self._negative_report(end_mm)
            return
        if end_frame_delay < VIDEO_DELAY_TH:
            self._negative_report(end_mm)
            return
        self.max_video_latency = max(end_frame_delay, self.max_video_latency)
        self.max_audio_latency = max(audio_delay, self.max_audio_latency)
        medium = self.max_video_latency * PLAYBACK_LATENCY_DECREASE_FACTOR
        major = medium * PLAYBACK_LATENCY_DECREASE_FACTOR
        if (end_frame_delay < medium and delay_small) or end_frame_delay < major:
            self._negative_report(end_mm)
        elif not num_drops:
            self._positive_report(start_mm)

    def _negative_report(self, end_mm: int) -> None:
        if (self.change_start_mm > end_mm or not self.change_start_mm) and \
                not self.was_upgraded:
            return
        self._decrease_bit_rate()

    def _positive_report(self, start_mm: int) -> None:
        if self.evaluating and self.eval.reason == REASON_RATE_CHANGE:
            return
        strict = ((self.fps > IMPROVE_QUALITY_FPS_STRICT_TH or self.fps >= self.source_fps())
                  and self.quality_id > NUM_QUALITIES // 2)
        timeout = CLIENT_POSITIVE_REPORT_STRICT_TIMEOUT if strict else \
            CLIENT_POSITIVE_REPORT_TIMEOUT
        stable = (start_mm - self.change_start_mm) & 0xFFFFFFFF
        if stable >= 1 << 31:
            stable -= 1 << 32
        if not self.change_start_mm or stable < timeout:
            return
        self._increase_bit_rate()
