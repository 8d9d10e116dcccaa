"""Chunked scanning of a CSV export: complete lines in, batches of records out.

The bulk of the work is done by C-level operations (``bytes.split``, ``map``, one
``decode`` for all keys of a chunk); per-line Python work happens only for lines that
contain a quote character, where CSV stops being "split on the delimiter". See
csv_source for the HrisSource that drives it and the figures.
"""


from __future__ import annotations

import codecs
import csv
import hashlib
import re
from bisect import bisect_left
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from operator import and_, itemgetter, methodcaller, sub
from pathlib import Path

from rostersync.sync.connectors.base import FeedError

# 1 MiB: a chunk's lists (lines, digests, hits) then stay in the CPU caches while the
# comparison walks them; 8 MiB chunks made a million-row scan about 4% slower.
CHUNK_BYTES = 1 << 20
# No HR record is this long; past it an unbalanced quote is swallowing the file, and
# failing early keeps memory bounded (the csv module's own field limit is 128 KiB).
MAX_RECORD_BYTES = 1 << 20

_BOM = codecs.BOM_UTF8
# Same digest as models.digest_bytes. Copying an initialised hasher is ~20% cheaper per
# row than calling blake2b(raw, digest_size=8), whose keyword parsing dominates.
_BLAKE8 = hashlib.blake2b(digest_size=8)


def _digest(raw: bytes, _copy: Callable[[], hashlib.blake2b] = _BLAKE8.copy) -> bytes:
    hasher = _copy()
    hasher.update(raw)
    return hasher.digest()


# (key, digest, line number, raw) - the cheap form of a RawRecord.
RecordTuple = tuple[str, bytes, int, bytes]


@dataclass(frozen=True, slots=True)
class _Layout:
    """What one file's header says: where each configured column is."""

    width: int
    key_index: int
    columns: tuple[tuple[str, int | None], ...]  # canonical field -> column index
    attributes: tuple[tuple[str, int | None], ...]  # "attributes.<name>" -> column index
    present: frozenset[str]
    names: tuple[str, ...] = ()  # the header's named columns, in file order


@dataclass(slots=True)
class _Batch:
    """Parallel sequences for consecutive records of one chunk.

    A lazy scan leaves ``keys`` None and keeps blank lines as rows: a consumer that
    compares whole-line digests needs the keys of the few rows that changed only, and
    asks for them with ``keys_at``.
    """

    keys: Sequence[str] | None
    linenos: Sequence[int]
    raws: Sequence[bytes]
    scanner: _ChunkScanner | None = None

    def keys_at(self, positions: Sequence[int]) -> list[str | None]:
        """The keys of some rows; None for a blank line (which is no record)."""
        if self.keys is not None:
            return [self.keys[i] for i in positions]
        assert self.scanner is not None
        return self.scanner.keys_of([self.raws[i] for i in positions])


class _ChunkScanner:
    """Turns blocks of complete lines into batches of records, keeping line numbers."""

    def __init__(
        self,
        file_name: str,
        codec: str,
        sep: bytes,
        on_header: Callable[[str, bytes, int], _Layout],
        lazy_keys: bool = False,
    ) -> None:
        self.file_name = file_name
        self.lazy_keys = lazy_keys
        self.codec = codec
        self.sep = sep
        self.sep_text = sep.decode(codec)
        self.on_header = on_header
        self.layout: _Layout | None = None
        self.key_pattern: re.Pattern[bytes] | None = None
        self.lineno = 1  # line number of the next block's first line
        self.blank = b" \t" + sep  # a line of only these carries no data

    def feed(self, block: bytes, eof: bool) -> Generator[_Batch, None, bytes]:
        """Yield batches for ``block``; return the bytes of a record left open at its end.

        ``block`` ends with a newline unless ``eof``. A record whose quoted field is still
        open at the end of the block is returned (to be prepended to the next block) and
        its lines are not counted yet.
        """
        if b"\r" in block:
            block = block.replace(b"\r\n", b"\n")
        lines = block.split(b"\n")
        if block.endswith(b"\n"):
            lines.pop()
        elif lines[-1].endswith(b"\r"):  # a final CRLF cut off by EOF after the CR
            lines[-1] = lines[-1][:-1]
        n = len(lines)
        i = 0  # index of the next unprocessed line
        if self.layout is None:
            while i < n and not lines[i].strip(self.blank):
                i += 1
            if i == n:
                self.lineno += n
                return b""
            end = self._record_end(lines, i, eof)
            if end is None:
                return self._carry(lines, i)
            self._set_layout(
                self.on_header(self.file_name, b"\n".join(lines[i:end]), self.lineno + i)
            )
            i = end
        quoted, odd = _quote_lines(block, lines)
        # An odd number of quotes may leave a quoted field open: such a line may start a
        # multi-line record, which cuts the block into runs of single-line records.
        lo = bisect_left(quoted, i)
        for start in odd:
            if start < i or not _ends_in_quotes(lines[start], False, self.sep):
                continue  # inside the previous multi-line record, or a literal quote
            end = self._record_end(lines, start, eof)
            if start > i:
                hi = bisect_left(quoted, start, lo)
                yield self._single_lines(lines[i:start], _shift(quoted[lo:hi], i), self.lineno + i)
            if end is None:
                return self._carry(lines, start)
            yield self._multi_line(b"\n".join(lines[start:end]), self.lineno + start)
            i = end
            lo = bisect_left(quoted, i, lo)
        if i < n:
            yield self._single_lines(lines[i:], _shift(quoted[lo:], i), self.lineno + i)
        self.lineno += n
        return b""

    def _set_layout(self, layout: _Layout) -> None:
        self.layout = layout
        # The key column of a line with quotes: earlier fields skipped, then the key,
        # quoted ("" inside is a quote) or plain. Lines it does not match (a quote inside
        # an unquoted field, text after a closing quote) go through the csv module.
        sep = re.escape(self.sep)
        quoted, plain = rb'"[^"]*(?:""[^"]*)*"', rb'[^"' + sep + rb"]*"
        skip = rb"(?:(?:" + quoted + rb"|" + plain + rb")" + sep + rb"){%d}" % layout.key_index
        key = rb'(?:"([^"]*(?:""[^"]*)*)"|(' + plain + rb"))"
        self.key_pattern = re.compile(skip + key + rb"(?:" + sep + rb"|\Z)")

    def _carry(self, lines: list[bytes], i: int) -> bytes:
        self.lineno += i
        return b"\n".join(lines[i:]) + b"\n"

    def _record_end(self, lines: list[bytes], i: int, eof: bool) -> int | None:
        """Index after the last line of the record starting at ``lines[i]``.

        None when the record is still open at the end of a non-final block.
        """
        line = lines[i]
        # An even number of quotes closes every quoted field unless a quote sits inside
        # an unquoted field (the csv module keeps it literally); odd counts get the
        # exact check, which also handles such literal quotes.
        if not line.count(b'"') & 1 or not _ends_in_quotes(line, False, self.sep):
            return i + 1
        size = len(line)
        for k in range(i + 1, len(lines)):
            size += len(lines[k]) + 1
            if size > MAX_RECORD_BYTES:
                break
            if not _ends_in_quotes(lines[k], True, self.sep):
                return k + 1
        else:
            if not eof:
                return None
            raise FeedError(
                f"{self.file_name}:{self.lineno + i}: a quoted field opened in this record "
                "is never closed (the file ends inside it)"
            )
        raise FeedError(
            f"{self.file_name}:{self.lineno + i}: a quoted field opened in this record is "
            "still open after 1 MiB (an unbalanced quote?)"
        )

    def _single_lines(self, lines: list[bytes], quoted: list[int], first_lineno: int) -> _Batch:
        """One record per line; ``quoted`` lists the lines that contain quotes."""
        linenos: Sequence[int] = range(first_lineno, first_lineno + len(lines))
        if self.lazy_keys:
            return _Batch(None, linenos, lines, self)
        keys = self._keys(lines, quoted)
        if "" in keys:
            # Blank (or delimiter-only) lines are skipped; other rows without a key are
            # kept so validation can report them.
            keep = [
                bool(key) or bool(line.strip(self.blank))
                for key, line in zip(keys, lines, strict=True)
            ]
            keys = list(compress(keys, keep))
            linenos = list(compress(linenos, keep))
            lines = list(compress(lines, keep))
        return _Batch(keys, linenos, lines)

    def keys_of(self, lines: list[bytes]) -> list[str | None]:
        """The keys of some single-line records; None for a blank line."""
        if not lines:
            return []
        keys = self._keys(lines, [i for i, line in enumerate(lines) if b'"' in line])
        return [key if key or line.strip(self.blank) else None
                for key, line in zip(keys, lines, strict=True)]

    def _keys(self, lines: list[bytes], quoted: list[int]) -> list[str]:
        """The key of each line; ``quoted`` lists the lines that contain quotes.

        Keys are found in bulk: a split on the delimiter for lines without quotes, and
        for lines with quotes a cheaper check or a regex (the csv module as last resort).
        """
        if len(quoted) == len(lines):
            key_bytes = self._quoted_keys(lines)
        else:
            key_bytes = self._plain_keys(lines)
            if quoted:
                fixed = self._quoted_keys(list(map(lines.__getitem__, quoted)))
                for index, key in zip(quoted, fixed, strict=True):
                    key_bytes[index] = key
        try:
            keys = b"\n".join(key_bytes).decode(self.codec).split("\n")
        except UnicodeDecodeError:
            # Some key is undecodable; keep it visible, fields() reports the row.
            keys = [kb.decode(self.codec, "replace") for kb in key_bytes]
        return list(map(str.strip, keys))

    def _plain_keys(self, lines: list[bytes]) -> list[bytes]:
        """The key column's bytes for lines without quotes: a split on the delimiter."""
        assert self.layout is not None
        k, sep = self.layout.key_index, self.sep
        if k == 0:
            # partition (not find) so a line without a delimiter keeps its whole key.
            return list(map(itemgetter(0), map(bytes.partition, lines, repeat(sep))))
        try:
            return list(map(itemgetter(k), map(bytes.split, lines, repeat(sep), repeat(k + 1))))
        except IndexError:  # a short (ragged or blank) line somewhere in the batch
            parts = map(bytes.split, lines, repeat(sep), repeat(k + 1))
            return [p[k] if len(p) > k else b"" for p in parts]

    def _quoted_keys(self, lines: list[bytes]) -> list[bytes]:
        """The key column's unquoted bytes for single lines that contain quotes."""
        assert self.layout is not None and self.key_pattern is not None
        if self.layout.key_index == 0:
            keys = self._plain_keys(lines)
            joined = b"\n".join(keys)
            if b'"' not in joined:
                return keys  # the quotes are in later columns
            m = len(keys)
            # Every key exactly '"text"' with no quote inside (the usual "quote all"
            # export): its value is the text between the quotes.
            if (
                joined.count(b'"') == 2 * m
                and joined.count(b'\n"') == joined.count(b'"\n') == m - 1
                and joined.startswith(b'"')
                and joined.endswith(b'"')
                and b'"' not in keys
            ):
                return list(map(itemgetter(slice(1, -1)), keys))
        matches = list(map(self.key_pattern.match, lines))
        if None in matches:
            return [
                self._key_by_csv(line) if m is None else _key_of(m)
                for line, m in zip(lines, matches, strict=True)
            ]
        # groups(b"") gives (quoted content, plain text) with the unused one empty.
        keys = list(map(b"".join, map(methodcaller("groups", b""), matches)))
        if b'""' in b"\n".join(keys):
            keys = [key.replace(b'""', b'"') for key in keys]
        return keys

    def _key_by_csv(self, raw: bytes) -> bytes:
        assert self.layout is not None
        # surrogateescape round-trips undecodable bytes, so fields() still sees them.
        row = _parse_loose(raw.decode(self.codec, "surrogateescape"), self.sep_text)
        k = self.layout.key_index
        return row[k].encode(self.codec, "surrogateescape") if len(row) > k else b""

    def _multi_line(self, raw: bytes, lineno: int) -> _Batch:
        return _Batch(
            [self._key_by_csv(raw).decode(self.codec, "replace").strip()], [lineno], [raw]
        )


def _quote_lines(block: bytes, lines: list[bytes]) -> tuple[list[int], list[int]]:
    """Indexes of the lines holding quote characters, and of those holding an odd number."""
    total = block.count(b'"')
    if total * 4 >= len(lines):
        # Quotes on most lines: count them on every line, in bulk.
        counts = list(map(bytes.count, lines, repeat(b'"')))
        quoted = list(compress(range(len(lines)), counts))
        odd = list(compress(range(len(lines)), map(and_, counts, repeat(1))))
        return quoted, odd
    # Few quotes: jump from quote to quote rather than touching every line.
    quoted = []
    line = cursor = 0  # the line index of the last quote found, and that line's start
    pos = block.find(b'"')
    while pos >= 0:
        line += block.count(b"\n", cursor, pos)
        cursor = block.rfind(b"\n", cursor, pos) + 1 or cursor
        quoted.append(line)
        end = block.find(b"\n", pos)
        pos = -1 if end < 0 else block.find(b'"', end)
    odd = [q for q in quoted if lines[q].count(b'"') & 1]
    return quoted, odd


def _shift(indexes: list[int], by: int) -> list[int]:
    return list(map(sub, indexes, repeat(by))) if by else indexes


def _key_of(match: re.Match[bytes]) -> bytes:
    quoted, plain = match.groups()
    return plain if quoted is None else quoted.replace(b'""', b'"')


def _parse_loose(text: str, sep: str) -> list[str]:
    try:
        return next(csv.reader([text], delimiter=sep), [])
    except csv.Error:
        return []


def _ends_in_quotes(line: bytes, in_quotes: bool, sep: bytes) -> bool:
    """Whether the csv module is inside a quoted field at the end of ``line``.

    csv rules (doublequote, no skipinitialspace): a quote opens a quoted field only as
    the field's first character; inside one, a doubled quote is a literal quote and a
    single quote closes it; anything after the closing quote up to the delimiter is
    literal, quotes included.
    """
    pos = 0
    while True:
        if in_quotes:
            q = line.find(b'"', pos)
            if q < 0:
                return True
            if line.startswith(b'"', q + 1):
                pos = q + 2
                continue
            in_quotes = False
            s = line.find(sep, q + 1)
            if s < 0:
                return False
            pos = s + 1
        elif line.startswith(b'"', pos):
            in_quotes = True
            pos += 1
        else:
            s = line.find(sep, pos)
            if s < 0:
                return False
            pos = s + 1


def _digests(raws: Sequence[bytes]) -> Iterator[bytes]:
    return map(_digest, raws)


def _tuples(batch: _Batch) -> Iterator[RecordTuple]:
    assert batch.keys is not None  # a full scan's batches carry their keys
    return zip(batch.keys, _digests(batch.raws), batch.linenos, batch.raws, strict=True)


def _locator_format(path: Path) -> str:
    return path.name.replace("%", "%%") + ":%d"


def _describe_decode_error(exc: UnicodeDecodeError) -> str:
    bad = exc.object[exc.start : exc.end]
    return f"byte {bad.hex(' ')} at offset {exc.start} ({exc.reason})"
