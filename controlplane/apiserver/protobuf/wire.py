"""The protobuf wire format, as small as the API server needs it: varints, keys and
length-delimited fields to write, and a reader that walks one message's fields, skipping
those it does not know (any wire type, groups included) and refusing truncated or
malformed input with a `WireError` that the HTTP layer turns into a 400."""

from __future__ import annotations

from collections.abc import Iterator

VARINT, FIXED64, LENGTH, START_GROUP, END_GROUP, FIXED32 = 0, 1, 2, 3, 4, 5
_MASK64 = (1 << 64) - 1


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message; `number` is the field at fault."""

    def __init__(self, message: str, number: int = 0) -> None:
        super().__init__(message)
        self.number = number


def varint(n: int) -> bytes:
    n &= _MASK64
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def key(field: int, wire: int) -> bytes:
    return varint((field << 3) | wire)


def length_delimited(tag: bytes, data: bytes) -> bytes:
    """`tag` is a precomputed `key(field, LENGTH)`."""
    n = len(data)
    return tag + (bytes((n,)) if n < 0x80 else varint(n)) + data


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    b = data[pos]  # IndexError on truncation: the caller maps it to WireError
    if b < 0x80:
        return b, pos + 1
    result = b & 0x7F
    shift = 7
    pos += 1
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result & _MASK64, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than 10 bytes")


def signed(n: int, bits: int = 64) -> int:
    """A varint read back as a two's complement int32/int64 (negative ints use 10 bytes)."""
    n &= _MASK64
    if n >= 1 << 63:
        n -= 1 << 64
    if bits == 32:
        n = ((n + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
    return n


def fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value): an int for varints and fixed-width values,
    the bytes for length-delimited ones; groups are skipped whole."""
    pos = 0
    end = len(data)
    try:
        while pos < end:
            tag = data[pos]
            if tag < 0x80:  # one-byte keys and lengths are the common case: no call
                pos += 1
            else:
                tag, pos = read_varint(data, pos)
            number, wire = tag >> 3, tag & 7
            if number == 0:
                raise WireError("field number 0 is not allowed")
            if wire == LENGTH:
                n = data[pos]
                if n < 0x80:
                    pos += 1
                else:
                    n, pos = read_varint(data, pos)
                if pos + n > end:
                    raise WireError(f"length {n} runs past the end of the message", number)
                yield number, wire, data[pos:pos + n]
                pos += n
            elif wire == VARINT:
                value, pos = read_varint(data, pos)
                yield number, wire, value
            elif wire in (FIXED64, FIXED32):
                width = 8 if wire == FIXED64 else 4
                if pos + width > end:
                    raise WireError("truncated fixed-width value", number)
                yield number, wire, int.from_bytes(data[pos:pos + width], "little")
                pos += width
            elif wire == START_GROUP:
                pos = _skip_group(data, pos, number)
            else:
                raise WireError(f"invalid wire type {wire}", number)
    except IndexError:
        raise WireError("truncated message") from None


def _skip_group(data: bytes, pos: int, number: int) -> int:
    depth = 1
    end = len(data)
    while depth:
        if pos >= end:
            raise WireError("unterminated group", number)
        tag, pos = read_varint(data, pos)
        wire = tag & 7
        if wire == VARINT:
            _, pos = read_varint(data, pos)
        elif wire == LENGTH:
            n, pos = read_varint(data, pos)
            pos += n
        elif wire == FIXED64:
            pos += 8
        elif wire == FIXED32:
            pos += 4
        elif wire == START_GROUP:
            depth += 1
        elif wire == END_GROUP:
            depth -= 1
        else:
            raise WireError(f"invalid wire type {wire} inside a group", number)
        if pos > end:
            raise WireError("truncated group", number)
    return pos
