"""`images_processing`: thumbnail, resize or convert one image with Pillow.

The source is `path` (inside JOBQUEUE_IMAGES_DIR) or `image_base64`; the output is written
to JOBQUEUE_IMAGES_DIR/processed. Input the job cannot use (a corrupt image, a missing file,
an unsafe path, an unknown operation) fails the job at once. See docs/handlers.md.

An output over JOBQUEUE_IMAGES_MAX_PIXELS is refused: at enqueue when the payload says its
size (422), in the worker before any pixel is made otherwise. The work runs in a process of
its own under JOBQUEUE_HANDLER_MEMORY_MB (worker.handlers.bounded), so that no image can
take the worker's memory; see docs/security.md.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from worker.handlers import bounded
from worker.handlers.base import JobContext, PermanentError, registry
from worker.handlers.bounded import run_bounded
from worker.handlers.config import handler_settings
from worker.handlers.payload import (
    InvalidPayload,
    choice,
    optional_int,
    optional_str,
    payload_limits,
    payload_model,
    require_str,
)
from worker.handlers.storage import check_file_name, resolve_inside, safe_file_stem, save_output
from worker.settings import HandlerLimits

if TYPE_CHECKING:
    from PIL import Image

# Pillow loads when an image is read, not on every worker's cold start (issue 27); the
# forkserver that runs the work (worker.handlers.bounded) loads it once for all its children.
PILLOW = ("PIL.Image", "PIL.ImageOps")
bounded.preload(*PILLOW)

OPERATIONS = ("thumbnail", "resize", "convert")
# Output formats and the pixel modes each can store; other modes are converted first.
SAVE_MODES = {
    "png": {"1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"},
    "jpeg": {"L", "RGB", "CMYK"},
    "webp": {"RGB", "RGBA"},
    "gif": {"L", "P"},
    "bmp": {"1", "L", "P", "RGB", "RGBA"},
    "tiff": {"1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16"},
}
FORMAT_ALIASES = {"jpg": "jpeg", "tif": "tiff"}
EXTENSIONS = {"jpeg": "jpg", "tiff": "tif"}
MAX_SIDE = 10_000
MAX_SOURCE_PIXELS = 50_000_000
MAX_SOURCE_BYTES = 64 * 1024 * 1024
OUTPUT_SUBDIR = "processed"


@dataclass(frozen=True)
class ImageJob:
    operation: str
    width: int | None
    height: int | None
    format: str | None
    quality: int | None
    output_name: str | None


@payload_model("images_processing")
def check_payload(payload: Mapping[str, Any]) -> ImageJob:
    """What the API can check: the operation and its options, and one source given (whether
    the source file exists and decodes is for the worker, which sees its images folder)."""
    if (payload.get("path") is not None) == (payload.get("image_base64") is not None):
        raise InvalidPayload("path", "give exactly one of 'path' and 'image_base64'")
    return read_job(payload)


def read_job(payload: Mapping[str, Any]) -> ImageJob:
    operation = choice(payload, "operation", OPERATIONS, default=None)
    width = optional_int(payload, "width", minimum=1, maximum=MAX_SIDE)
    height = optional_int(payload, "height", minimum=1, maximum=MAX_SIDE)
    if operation == "convert":
        if width or height:
            given = "width" if width else "height"
            raise InvalidPayload(given, "convert keeps the size; use resize to change it")
    elif width is None and height is None:
        raise InvalidPayload("width", f"{operation} needs width, height or both")
    raw_format = payload.get("format")
    if isinstance(raw_format, str):
        raw_format = FORMAT_ALIASES.get(raw_format.lower(), raw_format.lower())
    fmt = choice({"format": raw_format}, "format", SAVE_MODES, default="")
    if operation == "convert" and not fmt:
        raise InvalidPayload("format", f"convert needs a target format: {', '.join(SAVE_MODES)}")
    output_name = optional_str(payload, "output_name")
    return ImageJob(
        operation=operation,
        width=width,
        height=height,
        format=fmt or None,
        quality=optional_int(payload, "quality", minimum=1, maximum=100),
        output_name=check_file_name("output_name", output_name) if output_name else None,
    )


def target_size(job: ImageJob, width: int, height: int) -> tuple[int, int]:
    """The output's size for a source of width x height."""
    if job.operation == "resize":
        return (
            job.width or max(1, round(width * (job.height or 0) / height)),
            job.height or max(1, round(height * (job.width or 0) / width)),
        )
    if job.operation == "thumbnail":  # fits inside the box, never larger than the source
        box_w, box_h = job.width or MAX_SIDE, job.height or MAX_SIDE
        scale = min(1.0, box_w / width, box_h / height)
        return max(1, round(width * scale)), max(1, round(height * scale))
    return width, height


def check_pixels(job: ImageJob, size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        field = "width" if job.operation != "convert" else "path"
        raise InvalidPayload(
            field,
            f"the output would be {width}x{height}, {width * height} pixels, over the cap of "
            f"{max_pixels} (JOBQUEUE_IMAGES_MAX_PIXELS)",
        )


@payload_limits("images_processing")
def check_limits(payload: Mapping[str, Any], limits: HandlerLimits) -> None:
    """At enqueue: the output's size when the payload tells it (both sides given, or a
    base64 source whose header says its size; a path is only read by the worker)."""
    job = read_job(payload)
    if job.width and job.height and job.operation == "resize":
        check_pixels(job, (job.width, job.height), limits.images_max_pixels)
        return
    data = payload.get("image_base64")
    if not isinstance(data, str):
        return
    from PIL import Image

    try:
        with Image.open(io.BytesIO(_decode_base64(data))) as image:
            size = image.size  # the header only: nothing is decoded
    except InvalidPayload:
        raise
    except Exception:  # the worker names what is wrong with the data
        return
    check_pixels(job, target_size(job, *size), limits.images_max_pixels)


def read_source(payload: dict[str, Any], images_dir: str) -> tuple[bytes, str, str, str]:
    """The source bytes, a stem for the output name, how errors name the source, and the
    payload field it came from."""
    has_path = payload.get("path") is not None
    if has_path == (payload.get("image_base64") is not None):
        raise InvalidPayload("path", "give exactly one of 'path' and 'image_base64'")
    if not has_path:
        data = _decode_base64(require_str(payload, "image_base64"))
        return data, "image", "the data", "image_base64"
    path = resolve_inside(images_dir, require_str(payload, "path"), field="path")
    try:
        if path.stat().st_size > MAX_SOURCE_BYTES:
            raise InvalidPayload("path", f"{path} is larger than {MAX_SOURCE_BYTES} bytes")
        return path.read_bytes(), path.stem, str(path), "path"
    except (FileNotFoundError, NotADirectoryError):
        raise InvalidPayload("path", f"the source image {path} does not exist") from None
    except IsADirectoryError:
        raise InvalidPayload("path", f"{path} is a folder, not an image") from None


def _decode_base64(text: str) -> bytes:
    if text.startswith("data:"):  # accept a data URL as browsers produce it
        text = text.partition(",")[2]
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidPayload("image_base64", f"is not valid base64 ({exc})") from None


def decode_image(data: bytes, field: str, label: str) -> Image.Image:
    """Decode fully; `label` names the source (its path, or the base64 data) in errors."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > MAX_SOURCE_PIXELS:
            raise InvalidPayload(
                field, f"image is {width}x{height}, over {MAX_SOURCE_PIXELS} pixels"
            )
        image.load()
    except (PermanentError, MemoryError):
        raise
    except Image.DecompressionBombError as exc:
        raise InvalidPayload(field, f"refused as a decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        problem = f"{label} is not a readable image: unknown format or corrupt data"
        raise InvalidPayload(field, problem) from None
    except Exception as exc:  # Pillow raises many types for bad bytes; retrying cannot help
        problem = f"{label} is not a readable image: {type(exc).__name__}: {exc}"
        raise InvalidPayload(field, problem) from None
    return image


def _fit_mode(image: Image.Image, fmt: str) -> Image.Image:
    from PIL import Image

    allowed = SAVE_MODES[fmt]
    if image.mode in allowed:
        return image
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if has_alpha and "RGBA" in allowed:
        return image.convert("RGBA")
    if has_alpha:  # flatten onto white, as a viewer would show it
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        image = background
    if "RGB" in allowed:
        return image.convert("RGB")
    return image.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE)


def transform(image: Image.Image, job: ImageJob, max_pixels: int) -> Image.Image:
    from PIL import Image, ImageOps

    image = ImageOps.exif_transpose(image)  # outputs carry no EXIF, so apply the rotation
    check_pixels(job, target_size(job, *image.size), max_pixels)
    if job.operation == "thumbnail":
        image.thumbnail((job.width or MAX_SIDE, job.height or MAX_SIDE), Image.Resampling.LANCZOS)
    elif job.operation == "resize":
        image = image.resize(target_size(job, *image.size), Image.Resampling.LANCZOS)
    return image


def encode(image: Image.Image, fmt: str, quality: int | None) -> bytes:
    options: dict[str, Any] = {}
    if quality is not None and fmt in ("jpeg", "webp"):
        options["quality"] = quality
    buffer = io.BytesIO()
    _fit_mode(image, fmt).save(buffer, format=fmt.upper(), **options)
    return buffer.getvalue()


def process_image(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Validate, read, transform and write (blocking; runs in a thread)."""
    job = read_job(payload)
    data, stem, label, field = read_source(payload, handler_settings().images_dir)
    ctx.progress(0.1, f"read {len(data)} bytes")
    source = decode_image(data, field, label)
    ctx.progress(0.3, f"decoded {source.width}x{source.height}")
    source_format = (source.format or "").lower()
    fmt = job.format or (source_format if source_format in SAVE_MODES else "png")
    output = encode(
        transform(source, job, handler_settings().limits.images_max_pixels), fmt, job.quality
    )
    ctx.progress(0.8, f"{job.operation} done, encoded as {fmt}")
    base_name = job.output_name or (
        f"{safe_file_stem(stem, fallback='image', max_length=60)}-{job.operation}-job{ctx.job_id}"
    )
    extension = EXTENSIONS.get(fmt, fmt)
    name = base_name if base_name.lower().endswith(f".{extension}") else f"{base_name}.{extension}"
    from PIL import Image

    with Image.open(io.BytesIO(output)) as written:
        width, height = written.size
    folder = Path(handler_settings().images_dir) / OUTPUT_SUBDIR
    result = save_output(folder, name, output, format=fmt, width=width, height=height)
    ctx.progress(1.0, f"wrote {name}")
    source_facts = {"format": source_format, "width": source.width, "height": source.height}
    return {**result, "source": source_facts}


@registry.register("images_processing", timeout_seconds=120)
async def images_processing(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    result: dict[str, Any] = await run_bounded(process_image, payload, ctx)
    return result
