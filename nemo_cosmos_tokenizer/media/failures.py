"""Why a sample could not be turned into clips: the reason codes of the failures report and :class:`MediaError`.

Its own module (no imports) so that the media readers (:mod:`.video`) and the input sources (:mod:`.sources`), which
both raise it, do not import each other.
"""

from __future__ import annotations

__all__ = ["FAILURE_REASONS", "MediaError"]

#: Reason codes of per-sample failures.
FAILURE_REASONS = {
    "missing": "the file does not exist",
    "empty_file": "the file has zero bytes",
    "no_caption": "no caption (folder input without a sidecar .txt)",
    "no_video_stream": "the file holds no video stream (audio only, or not media)",
    "unreadable": "the file cannot be opened or decoded",
    "truncated": "fewer frames decode than the container promises (cut-off file)",
    "too_short": "fewer frames than one clip needs",
    "bad_range": "the manifest's start/end range holds no frames",
    # corpus inputs (.sources): tar shards, object storage
    "no_media": "a tar sample holds no video or image member",
    "unreachable": "the object could not be fetched from storage (after retries)",
}


class MediaError(Exception):
    """A sample that cannot be turned into clips; ``reason`` is one of :data:`FAILURE_REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        if reason not in FAILURE_REASONS:
            raise ValueError(f"unknown failure reason {reason!r}")
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.decodable_frames: int | None = None
        """For a video that decodes up to a corrupt frame: how many frames before it decode (else ``None``)."""

    def __reduce__(self):
        # Failures travel from DataLoader worker processes by pickle; the default would call cls(message) alone.
        return (type(self), (self.reason, self.message))
