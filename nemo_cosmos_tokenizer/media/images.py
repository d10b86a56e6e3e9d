"""Images as uint8 ``[H, W, 3]`` sRGB: EXIF orientation applied, CMYK and ICC profiles converted to sRGB, alpha
composited on white, 16-bit and grey scaled to 8-bit RGB."""

from __future__ import annotations

import io

import numpy as np

from .failures import MediaError

INSTALL_HINT = 'pip install "nemo-cosmos-tokenizer[data]"'


def as_file(media: str | bytes):
    """What a decoder opens: the path itself, or a file object over the bytes (a fresh one per open)."""
    return io.BytesIO(media) if isinstance(media, (bytes, bytearray, memoryview)) else media


def load_image(path: str | bytes) -> np.ndarray:
    """An image (a file path, or its bytes) as uint8 ``[H, W, 3]`` sRGB, displayed orientation."""
    try:
        from PIL import Image, ImageOps
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"reading images needs Pillow: {INSTALL_HINT}") from err
    try:
        with Image.open(as_file(path)) as opened:
            image = ImageOps.exif_transpose(opened)  # applies and drops EXIF Orientation
            image.load()
    except Exception as err:  # Pillow raises many types for bad files
        raise MediaError("unreadable", f"cannot read image: {err}") from err
    image = _to_srgb(image)
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        # 16-bit (or 32-bit int) grey: Pillow's convert("L") would clip; scale 0..65535 -> 0..255 instead.
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or values.max() > 255 else 255.0
        grey = np.clip(np.floor(values * (255.0 / top) + 0.5), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        scale = 255.0 if values.max() <= 1.0 else 1.0
        grey = np.clip(np.floor(values * scale + 0.5), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def _to_srgb(image):
    """Convert through an embedded ICC profile to sRGB when there is one (CMYK included)."""
    profile = image.info.get("icc_profile")
    if not profile or image.mode not in ("RGB", "CMYK", "RGBA"):
        return image.convert("RGB") if image.mode == "CMYK" else image
    try:
        from PIL import ImageCms

        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        target = ImageCms.createProfile("sRGB")
        out_mode = "RGBA" if image.mode == "RGBA" else "RGB"
        return ImageCms.profileToProfile(image, source, target, outputMode=out_mode)
    except Exception:  # a broken profile: keep the pixels as they are
        return image.convert("RGB") if image.mode == "CMYK" else image
