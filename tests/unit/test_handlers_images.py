"""The `images_processing` handler on real images that Pillow makes in tmp_path."""

from __future__ import annotations

import base64
import hashlib
import io
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.unit.handler_support import job_context, leftover_temp_files
from worker.handlers import JobContext, PermanentError
from worker.handlers.config import handler_settings
from worker.handlers.images_processing import images_processing
from worker.handlers.payload import InvalidPayload


def make_image(size: tuple[int, int] = (200, 100), mode: str = "RGB", fmt: str = "PNG") -> bytes:
    color: Any = (200, 30, 30, 128) if mode == "RGBA" else (200, 30, 30)
    image = Image.new(mode, size, color)
    image.paste((0, 0, 255) if mode == "RGB" else (0, 0, 255, 255), (0, 0, size[0] // 2, size[1]))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def put_image(ctx: JobContext, name: str, data: bytes) -> Path:
    path = Path(handler_settings().images_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def open_output(result: dict[str, Any]) -> Image.Image:
    """The written image, after checking the result describes it truthfully."""
    data = Path(result["path"]).read_bytes()
    assert len(data) == result["bytes"] and hashlib.sha256(data).hexdigest() == result["sha256"]
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.size == (result["width"], result["height"])
    return image


async def test_thumbnail_from_a_path_keeps_the_aspect_ratio(tmp_path: Path) -> None:
    ctx = job_context(tmp_path, job_id=3)
    put_image(ctx, "in/photo.png", make_image((200, 100)))
    result = await images_processing(
        {"path": "in/photo.png", "operation": "thumbnail", "width": 64, "height": 64}, ctx
    )
    expected = (tmp_path / "images" / "processed" / "photo-thumbnail-job3.png").resolve()
    assert result["path"] == str(expected)
    assert (result["width"], result["height"], result["format"]) == (64, 32, "png")
    assert result["source"] == {"format": "png", "width": 200, "height": 100}
    image = open_output(result)
    assert image.format == "PNG"
    assert image.getpixel((5, 5)) == (0, 0, 255) and image.getpixel((60, 5)) == (200, 30, 30)


async def test_thumbnail_never_enlarges(tmp_path: Path) -> None:
    ctx = job_context(tmp_path)
    put_image(ctx, "small.png", make_image((40, 20)))
    result = await images_processing(
        {"path": "small.png", "operation": "thumbnail", "width": 400}, ctx
    )
    assert (result["width"], result["height"]) == (40, 20)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ({"width": 50}, (50, 25)),
        ({"height": 300}, (600, 300)),
        ({"width": 30, "height": 90}, (30, 90)),
    ],
)
async def test_resize(tmp_path: Path, size: dict[str, int], expected: tuple[int, int]) -> None:
    ctx = job_context(tmp_path)
    put_image(ctx, "a.png", make_image((200, 100)))
    result = await images_processing({"path": "a.png", "operation": "resize", **size}, ctx)
    assert open_output(result).size == expected


async def test_convert_transparent_png_to_jpeg_flattens_onto_white(tmp_path: Path) -> None:
    ctx = job_context(tmp_path)
    put_image(ctx, "t.png", make_image((20, 10), mode="RGBA"))
    result = await images_processing(
        {"path": "t.png", "operation": "convert", "format": "jpg", "quality": 90}, ctx
    )
    assert Path(result["path"]).name == "t-convert-job1.jpg" and result["format"] == "jpeg"
    image = open_output(result)
    assert image.format == "JPEG" and image.mode == "RGB" and image.size == (20, 10)
    pixel = image.getpixel((15, 5))  # half-transparent red over white: pink
    assert isinstance(pixel, tuple)
    red, green, blue = pixel
    assert red > 200 and 100 < green < 180 and 100 < blue < 180


async def test_base64_source_to_webp_with_an_output_name(tmp_path: Path) -> None:
    encoded = base64.b64encode(make_image((120, 80), fmt="JPEG")).decode()
    payload = {
        "image_base64": f"data:image/jpeg;base64,{encoded}",
        "operation": "resize",
        "width": 60,
        "format": "webp",
        "output_name": "avatar_small",
    }
    result = await images_processing(payload, job_context(tmp_path))
    assert result["path"] == str((tmp_path / "images/processed/avatar_small.webp").resolve())
    assert result["source"]["format"] == "jpeg"
    image = open_output(result)
    assert image.format == "WEBP" and image.size == (60, 40)


async def test_exif_rotation_is_applied(tmp_path: Path) -> None:
    ctx = job_context(tmp_path)
    image = Image.new("RGB", (200, 100), (10, 200, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    put_image(ctx, "rotated.jpg", buffer.getvalue())
    result = await images_processing(
        {"path": "rotated.jpg", "operation": "thumbnail", "width": 50, "height": 50}, ctx
    )
    assert (result["width"], result["height"], result["format"]) == (25, 50, "jpeg")


async def test_a_retry_rewrites_the_same_file(tmp_path: Path) -> None:
    ctx = job_context(tmp_path, job_id=8)
    put_image(ctx, "a.gif", make_image((64, 64), fmt="GIF"))
    payload = {"path": "a.gif", "operation": "thumbnail", "width": 16}
    first = await images_processing(payload, ctx)
    second = await images_processing(payload, ctx)
    assert first == second and open_output(first).format == "GIF"
    assert [p.name for p in (tmp_path / "images/processed").iterdir()] == ["a-thumbnail-job8.gif"]
    assert leftover_temp_files(tmp_path) == []


def broken_sources(ctx: JobContext, tmp_path: Path) -> None:
    png = make_image((300, 300))
    put_image(ctx, "garbage.png", b"this is not an image at all")
    put_image(ctx, "truncated.png", png[: len(png) // 2])
    put_image(ctx, "empty.png", b"")
    (Path(handler_settings().images_dir) / "folder.png").mkdir()
    (tmp_path / "secret.png").write_bytes(png)
    os.symlink(tmp_path / "secret.png", Path(handler_settings().images_dir) / "link.png")


GOOD = {"path": "ok.png", "operation": "thumbnail", "width": 10}


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({**GOOD, "path": "garbage.png"}, "path", "not a readable image"),
        ({**GOOD, "path": "truncated.png"}, "path", "not a readable image"),
        ({**GOOD, "path": "empty.png"}, "path", "not a readable image"),
        ({**GOOD, "path": "missing.png"}, "path", "does not exist"),
        ({**GOOD, "path": "folder.png"}, "path", "is a folder"),
        ({**GOOD, "path": "../secret.png"}, "path", "unsafe path"),
        ({**GOOD, "path": "/etc/passwd"}, "path", "unsafe path"),
        ({**GOOD, "path": "link.png"}, "path", "unsafe path"),
        ({**GOOD, "path": "a\x00.png"}, "path", "NUL"),
        ({"operation": "thumbnail", "width": 10}, "path", "exactly one of"),
        ({**GOOD, "image_base64": "aGk="}, "path", "exactly one of"),
        ({"image_base64": "%%%not base64", "operation": "convert", "format": "png"},
         "image_base64", "not valid base64"),
        ({"image_base64": base64.b64encode(b"GIF89a nonsense").decode(), "operation": "convert",
          "format": "png"}, "image_base64", "not a readable image"),
        ({**GOOD, "operation": "rotate"}, "operation", "thumbnail, resize, convert"),
        ({"path": "ok.png", "width": 10}, "operation", "is required"),
        ({"path": "ok.png", "operation": "thumbnail"}, "width", "needs width, height or both"),
        ({"path": "ok.png", "operation": "convert"}, "format", "needs a target format"),
        ({"path": "ok.png", "operation": "convert", "format": "png", "height": 5}, "height",
         "keeps the size"),
        ({**GOOD, "format": "svg"}, "format", "png, jpeg"),
        ({**GOOD, "width": 0}, "width", "between 1 and"),
        ({**GOOD, "width": "100"}, "width", "must be an integer"),
        ({**GOOD, "width": 20_000}, "width", "between 1 and"),
        ({**GOOD, "quality": 101}, "quality", "between 1 and 100"),
        ({**GOOD, "output_name": "../escape"}, "output_name", "unsafe file name"),
        ({**GOOD, "output_name": "sub/name"}, "output_name", "unsafe file name"),
    ],
)  # fmt: skip
async def test_bad_input_fails_permanently_with_a_clear_error(
    tmp_path: Path, payload: dict[str, Any], field: str, words: str
) -> None:
    ctx = job_context(tmp_path)
    put_image(ctx, "ok.png", make_image())
    broken_sources(ctx, tmp_path)
    with pytest.raises(PermanentError) as caught:
        await images_processing(payload, ctx)
    assert isinstance(caught.value, InvalidPayload)
    assert caught.value.field == field, str(caught.value)
    assert f"'{field}'" in str(caught.value) and words in str(caught.value)
    assert not (tmp_path / "images" / "processed").exists()


async def test_an_image_with_too_many_pixels_is_refused_before_decoding(tmp_path: Path) -> None:
    ctx = job_context(tmp_path)
    buffer = io.BytesIO()
    Image.new("1", (8000, 7000)).save(buffer, format="PNG")  # small file, 56 M pixels
    put_image(ctx, "huge.png", buffer.getvalue())
    with pytest.raises(InvalidPayload, match=r"'path': image is 8000x7000, over 50000000 pixels"):
        await images_processing({"path": "huge.png", "operation": "convert", "format": "jpeg"}, ctx)


async def test_a_bounded_child_finds_pillow_imported_by_its_forkserver(tmp_path: Path) -> None:
    # The worker imports Pillow only when it reads an image (a cold start does not need it);
    # the forkserver imports it once, so that each image job pays a fork and not an import.
    from tests.unit.handler_support import pillow_loaded
    from worker.handlers.bounded import run_bounded
    from worker.handlers.images_processing import PILLOW

    assert await run_bounded(pillow_loaded, {}, job_context(tmp_path)) == list(PILLOW)
