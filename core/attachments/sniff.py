"""What a file really is, judged by its content, and whether its name agrees.

A browser's ``Content-Type`` and a file's name are whatever the sender says; an
executable renamed ``contract.pdf`` must not be stored as a PDF. :func:`detect` reads
the bytes: magic numbers for PDF and images (through ``filetype``), the part names of a
ZIP for Office Open XML and OFD (read from the central directory, never extracted), the
directory of an OLE compound file for legacy Word and Excel, and a strict decoding
check for plain text. Anything else — programs, web pages, SVG, scripts, archives in
general — is refused, and so is a name whose extension disagrees with the content.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
from dataclasses import dataclass

import filetype
from PIL import Image

from core.labels import N_

#: A detected type's canonical extension → its MIME type. Text types carry their charset.
MIME_TYPES = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpg": "image/jpeg",
    "gif": "image/gif",
    "tif": "image/tiff",
    "webp": "image/webp",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "doc": "application/msword",
    "xls": "application/vnd.ms-excel",
    "ppt": "application/vnd.ms-powerpoint",
    "ofd": "application/ofd",
    "txt": "text/plain",
    "csv": "text/csv",
}

#: The extensions a file name may have for each detected type.
NAME_EXTENSIONS = {
    "pdf": ("pdf",),
    "png": ("png",),
    "jpg": ("jpg", "jpeg", "jpe"),
    "gif": ("gif",),
    "tif": ("tif", "tiff"),
    "webp": ("webp",),
    "docx": ("docx",),
    "xlsx": ("xlsx",),
    "pptx": ("pptx",),
    "doc": ("doc",),
    "xls": ("xls",),
    "ppt": ("ppt",),
    "ofd": ("ofd",),
    "txt": ("txt",),
    "csv": ("csv",),
}

#: Types recognised by their magic number (``filetype``'s name → ours).
_MAGIC_TYPES = {"pdf": "pdf", "png": "png", "apng": "png", "jpg": "jpg", "gif": "gif", "tif": "tif", "webp": "webp"}
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
#: Programs, by their first bytes: Windows (MZ), Linux (ELF), macOS (Mach-O, both byte orders, fat).
_PROGRAM_MAGIC = (b"MZ", b"\x7fELF", b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe")
#: Markup a browser would render as a page (the WHATWG MIME-sniffing HTML patterns, plus SVG/XML).
_MARKUP = re.compile(
    rb"^\s*<(!doctype\s+html|html|head|script|iframe|h1|div|font|table|a|style|title|b|body|br|p|!--|\?xml|svg)[\s>/]",
    re.IGNORECASE,
)
#: C0 control characters that never appear in a text document (tab, LF, FF and CR do).
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")


class FileTypeRefused(ValueError):
    """The file's content is not an accepted type, or its name disagrees with it.

    ``template`` and ``params`` hold the reason in a form screens translate; ``str()``
    is the English reason the API answers with.
    """

    def __init__(self, template: str, **params: str):
        super().__init__(template % params)
        self.template = template
        self.params = params


@dataclass(frozen=True)
class DetectedType:
    """A file's type as found in its content: canonical ``extension`` and ``mime`` type."""

    extension: str
    mime: str

    @property
    def label(self) -> str:
        """How people name the type: ``PDF``, ``DOCX``, ``CSV``."""
        return self.extension.upper()


def name_extension(filename: str) -> str:
    """The lower-case extension of ``filename`` without the dot ('' when it has none)."""
    stem, dot, extension = filename.rpartition(".")
    return extension.lower() if dot and stem.strip() else ""


def detect(data: bytes, filename: str) -> DetectedType:
    """The type of ``data``, checked against the extension of ``filename``.

    Raises :class:`FileTypeRefused` when the content is of no accepted type (saying
    what it looks like when that is known) or when the name's extension belongs to
    another type. A name without an extension is accepted; the caller adds one.
    """
    found = sniff(data)
    extension = name_extension(filename)
    if found is None:
        raise unknown_content(data, filename)
    if found.extension == "txt" and extension == "csv":
        return DetectedType("csv", found.mime.replace("text/plain", "text/csv"))
    if extension and extension not in NAME_EXTENSIONS[found.extension]:
        raise FileTypeRefused(
            N_("“%(name)s” is named .%(named)s but its content is %(type)s"),
            name=filename,
            named=extension,
            type=found.label,
        )
    if found.extension in _IMAGE_TYPES:
        check_image(data, filename, found)
    return found


#: Detected types that are images, whose structure :func:`check_image` reads.
_IMAGE_TYPES = frozenset({"png", "jpg", "gif", "tif", "webp"})


def check_image(data: bytes, filename: str, found: DetectedType) -> None:
    """Refuse an image that is damaged, cut off or a pixel bomb.

    Pillow reads the image's header (every format) and, for PNG and WebP, checks every
    chunk to the end (``verify``) without decoding a pixel, so this is cheap. A scan whose
    upload was cut off is refused now rather than found broken when someone opens it, and an
    image of more pixels than Pillow's decompression-bomb limit (about 179 million) is refused
    before any viewer tries to decode it.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except Image.DecompressionBombError:
        raise FileTypeRefused(
            N_("“%(name)s” is an image of too many pixels to be opened safely"), name=filename
        ) from None
    except Exception as exc:  # whatever a crafted file makes an image parser raise: unreadable
        raise FileTypeRefused(
            N_("“%(name)s” is a damaged or incomplete %(type)s image"), name=filename, type=found.label
        ) from exc


def sniff(data: bytes) -> DetectedType | None:
    """The accepted type ``data`` holds, judged by content alone; None if it is none of them.

    Plain text comes back as ``txt`` (CSV cannot be told from text by content; the file
    name decides, see :func:`detect`).
    """
    if not data:
        return None
    if data.startswith(_ZIP_MAGIC):
        return _zip_type(data)
    if data.startswith(_OLE_MAGIC):
        return _ole_type(data)
    kind = filetype.guess(data)
    if kind is not None:
        extension = _MAGIC_TYPES.get(kind.extension)
        return DetectedType(extension, MIME_TYPES[extension]) if extension else None
    charset = text_charset(data)
    return DetectedType("txt", f"text/plain; charset={charset}") if charset else None


def unknown_content(data: bytes, filename: str) -> FileTypeRefused:
    """The refusal of content no accepted type matched, saying what it is when that is known."""
    if data.startswith(_PROGRAM_MAGIC) or data.startswith(b"#!"):
        return FileTypeRefused(N_("“%(name)s” is a program or script; such files are not accepted"), name=filename)
    if _MARKUP.match(data[:1024].removeprefix(b"\xef\xbb\xbf")):
        return FileTypeRefused(
            N_("“%(name)s” is a web page, SVG or XML file; such files are not accepted"), name=filename
        )
    if data.startswith(_ZIP_MAGIC):
        return FileTypeRefused(N_("“%(name)s” is an archive; upload the documents in it one by one"), name=filename)
    if data.startswith(_OLE_MAGIC):
        return FileTypeRefused(
            N_("“%(name)s” is an OLE file but not a Word, Excel or PowerPoint document"), name=filename
        )
    kind = filetype.guess(data)
    if kind is not None:
        return FileTypeRefused(
            N_("“%(name)s” is a %(type)s file, which is not an accepted document type"),
            name=filename,
            type=kind.extension.upper(),
        )
    return FileTypeRefused(N_("the content of “%(name)s” is not an accepted document type"), name=filename)


# --- plain text -------------------------------------------------------------------


def text_charset(data: bytes) -> str | None:
    """``utf-8`` or ``gb18030`` if ``data`` is plain text in that encoding, else None.

    Text has no NUL or other control bytes besides tab, line breaks and form feed, and
    is not markup (an HTML page or SVG renamed ``.txt`` is refused).
    """
    body = data.removeprefix(b"\xef\xbb\xbf")
    if _CONTROL.search(body) or _MARKUP.match(body[:1024]) or body.startswith(b"#!"):
        return None
    for charset in ("utf-8", "gb18030"):
        try:
            body.decode(charset)
        except UnicodeDecodeError:
            continue
        return charset
    return None


# --- ZIP containers: Office Open XML and OFD ---------------------------------------

#: The main part of each Office Open XML document type.
_OOXML_PARTS = (("word/document.xml", "docx"), ("xl/workbook.xml", "xlsx"), ("ppt/presentation.xml", "pptx"))


def _zip_type(data: bytes) -> DetectedType | None:
    """OOXML (docx/xlsx/pptx) or OFD by the ZIP's part names; None for other archives.

    Only the central directory is read; nothing is decompressed or extracted. Office
    files with macros (a ``vbaProject.bin`` part) are refused.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return None
    if "OFD.xml" in names:
        return DetectedType("ofd", MIME_TYPES["ofd"])
    if "[Content_Types].xml" not in names:
        return None
    if any(name.lower().endswith("vbaproject.bin") for name in names):
        raise FileTypeRefused(N_("the document contains macros; save it without macros (as .docx or .xlsx)"))
    for part, extension in _OOXML_PARTS:
        if part in names:
            return DetectedType(extension, MIME_TYPES[extension])
    return None


# --- OLE compound files: legacy Word, Excel, PowerPoint ----------------------------

#: The stream that makes an OLE file a document of each kind.
_OLE_STREAMS = (("WordDocument", "doc"), ("Workbook", "xls"), ("Book", "xls"), ("PowerPoint Document", "ppt"))
_END_OF_CHAIN = 0xFFFFFFFE
_MAX_SECTOR_ID = 0xFFFFFFFA
#: The most directory entries read (128 bytes each): far more streams and storages than
#: any Word, Excel or PowerPoint file holds, so a huge crafted directory is refused.
_MAX_DIRECTORY_ENTRIES = 32768


def _ole_type(data: bytes) -> DetectedType | None:
    """doc, xls or ppt by the streams in an OLE file's directory; None for any other OLE
    file (an MSI installer is one) or a damaged one."""
    try:
        names = ole_stream_names(data)
    except ValueError:
        return None
    for stream, extension in _OLE_STREAMS:
        if stream in names:
            return DetectedType(extension, MIME_TYPES[extension])
    return None


def ole_stream_names(data: bytes) -> set[str]:
    """The names in an OLE compound file's directory (MS-CFB), read without a library.

    Everything a crafted file could inflate is bounded by the file's own size: the FAT
    is read from at most as many distinct sectors as the file's sectors need (a DIFAT
    listing one sector thousands of times counts it once), it holds no more entries
    than the file has sectors, and the directory chain visits each sector at most once
    and holds at most :data:`_MAX_DIRECTORY_ENTRIES` entries. Every sector id and chain
    is checked, so a file cannot loop or read out of bounds; ``ValueError`` if damaged.
    """
    if len(data) < 512 or not data.startswith(_OLE_MAGIC):
        raise ValueError("not an OLE compound file")
    (sector_shift,) = struct.unpack_from("<H", data, 0x1E)
    if sector_shift not in (9, 12):
        raise ValueError("bad sector size")
    size = 1 << sector_shift
    sector_count = (len(data) - size) // size if len(data) > size else 0
    fat: list[int] = []
    for sector in _difat(data, size, sector_count):
        fat.extend(struct.unpack_from(f"<{size // 4}I", _sector(data, size, sector, sector_count)))
    del fat[sector_count:]  # entries for sectors past the end of the file describe nothing
    names: set[str] = set()
    visited: set[int] = set()
    (directory,) = struct.unpack_from("<I", data, 0x30)
    while directory != _END_OF_CHAIN:
        if directory in visited:
            raise ValueError("directory chain loops")
        if len(visited) * size // 128 >= _MAX_DIRECTORY_ENTRIES:
            raise ValueError("directory too large")
        visited.add(directory)
        raw = _sector(data, size, directory, sector_count)
        for offset in range(0, size, 128):
            entry = raw[offset : offset + 128]
            length, kind = struct.unpack_from("<HB", entry, 64)
            if kind in (1, 2, 5) and 2 <= length <= 64:
                names.add(entry[: length - 2].decode("utf-16-le", errors="replace"))
        if directory >= len(fat):
            raise ValueError("directory chain leaves the FAT")
        directory = fat[directory]
    return names


def _difat(data: bytes, size: int, sector_count: int) -> list[int]:
    """The distinct sector ids of the FAT: up to 109 in the header, the rest in a chain of
    DIFAT sectors, read no further than the file's sectors need FAT sectors.

    The FAT needs ``ceil(sector_count / (size / 4))`` sectors; ids beyond that and
    repeated ids are not read again (repeats are how a small file would make the FAT
    huge). A DIFAT chain that loops or is longer than that many FAT ids could fill is
    ``ValueError``.
    """
    per_sector = size // 4
    needed = -(-sector_count // per_sector)
    fat: dict[int, None] = {}  # insertion-ordered, distinct

    def take(ids: tuple[int, ...]) -> bool:
        """Add ``ids`` to the FAT's sectors; True once it has all it needs."""
        for sector in ids:
            if len(fat) >= needed:
                return True
            if sector <= _MAX_SECTOR_ID:
                fat.setdefault(sector, None)
        return len(fat) >= needed

    if take(struct.unpack_from("<109I", data, 0x4C)):
        return list(fat)
    (following,) = struct.unpack_from("<I", data, 0x44)
    seen: set[int] = set()
    # Each DIFAT sector lists size/4 - 1 FAT sectors: more DIFAT sectors than the
    # needed FAT sectors could fill is a damaged (or crafted) file.
    longest = -(-needed // (per_sector - 1)) + 1
    while following <= _MAX_SECTOR_ID:
        if following in seen or len(seen) >= longest:
            raise ValueError("DIFAT chain loops or is too long")
        seen.add(following)
        raw = struct.unpack_from(f"<{per_sector}I", _sector(data, size, following, sector_count))
        if take(raw[:-1]):
            break
        following = raw[-1]
    return list(fat)


def _sector(data: bytes, size: int, sector: int, sector_count: int) -> bytes:
    if sector >= sector_count:
        raise ValueError(f"sector {sector} lies outside the file")
    start = (sector + 1) * size
    return data[start : start + size]
