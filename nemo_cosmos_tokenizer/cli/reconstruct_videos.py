"""``reconstruct-videos`` (see :mod:`.reconstruct`)."""

from ._tokenizer_args import interrupt_message
from .reconstruct import VIDEOS_DESCRIPTION as DESCRIPTION
from .reconstruct import VIDEOS_HELP as HELP
from .reconstruct import add_video_arguments_ as add_arguments
from .reconstruct import run_videos as run

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "interrupt_message", "run"]
