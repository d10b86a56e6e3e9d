"""``reconstruct-images`` (see :mod:`.reconstruct`)."""

from ._tokenizer_args import interrupt_message
from .reconstruct import IMAGES_DESCRIPTION as DESCRIPTION
from .reconstruct import IMAGES_HELP as HELP
from .reconstruct import add_image_arguments as add_arguments
from .reconstruct import run_images as run

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "interrupt_message", "run"]
