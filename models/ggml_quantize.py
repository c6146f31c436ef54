#!/usr/bin/env python3
"""Quantize a whisper.cpp ggml model (as ct2_to_ggml.py writes it) to q8_0 or q5_1.
Pure Python 3 standard library, like ct2_to_ggml.py.

usage: ggml_quantize.py IN.bin OUT.bin q8_0|q5_1

Does what whisper.cpp's examples/quantize does (ggml_common_quantize_0): every 2-D tensor
except the convolution biases and the positional embeddings is quantized with ggml's
*reference* row quantizers (quantize_row_q8_0_ref, quantize_row_q5_1_ref: the ones ggml keeps
"for deterministic creation of model files"); everything else is copied; the hparams' ftype
becomes GGML_QNT_VERSION * 1000 + ftype. ggml computes in float32: every step below is
rounded to float32 exactly where the C code rounds (a double result of one +, -, * or / of two
float32 values, rounded to float32, is the float32 result), so the output is byte for byte
what ggml's own quantizer writes. `cargo run --release --example ggml_quantize` runs ggml's
for the comparison.
"""
import operator
import struct
import sys
from array import array
from itertools import repeat

GGML_QNT_VERSION = 2
GGML_QNT_VERSION_FACTOR = 1000
# name: (ggml_ftype, ggml_type, values per block)
TYPES = {"q8_0": (7, 8, 32), "q5_1": (9, 7, 32)}
F32, F16 = 0, 1
# Values quantized at a time: whole blocks.
CHUNK_VALUES = 32 * 16384
SKIP = {"encoder.conv1.bias", "encoder.conv2.bias", "encoder.positional_embedding",
        "decoder.positional_embedding"}


def f32(x):
    """x rounded to float32 (round to nearest even, as C's double -> float)."""
    return array("f", (x,))[0]


def f16_bytes(values):
    """float16 encodings, rounded to nearest even like ggml's GGML_FP32_TO_FP16."""
    return struct.pack("<%de" % len(values), *values)


def rows_of(flat, n):
    return [flat[i:i + n] for i in range(0, len(flat), n)]


def q8_0(values):
    """quantize_row_q8_0_ref: per block of 32, d = amax / 127, q = roundf(x / d)."""
    blocks = rows_of(values, 32)
    ds = [f32(max(map(abs, b)) / 127) for b in blocks]
    ids = [f32(1.0 / d) if d else 0.0 for d in ds]
    scaled = array("f", map(operator.mul, values, (i for i in ids for _ in range(32))))
    # roundf: half away from zero (|x| <= 127 + ulp, so |x| + 0.5 is exact in a double).
    qs = array("b", [int(x + 0.5) if x >= 0 else -int(0.5 - x) for x in scaled]).tobytes()
    d16 = f16_bytes(ds)
    return b"".join(d16[2 * i:2 * i + 2] + qs[32 * i:32 * i + 32] for i in range(len(blocks)))


def q5_1(values):
    """quantize_row_q5_1_ref: per block of 32, m = min, d = (max - min) / 31,
    q = (uint8)((x - m) / d + 0.5) in 5 bits: low nibbles of x[j] and x[j + 16] share a byte,
    the fifth bits go to a 32-bit mask."""
    blocks = rows_of(values, 32)
    mins = [min(b) for b in blocks]
    ds = [f32(f32(max(b) - m) / 31) for b, m in zip(blocks, mins)]
    ids = [f32(1.0 / d) if d else 0.0 for d in ds]
    per_value = lambda xs: (x for x in xs for _ in range(32))  # noqa: E731
    shifted = array("f", map(operator.sub, values, per_value(mins)))
    scaled = array("f", map(operator.mul, shifted, per_value(ids)))
    qs = list(map(int, array("f", map(operator.add, scaled, repeat(0.5)))))
    dm = f16_bytes([x for pair in zip(ds, mins) for x in pair])
    out = []
    for i in range(len(blocks)):
        q = qs[32 * i:32 * i + 32]
        qh = sum(((v >> 4) & 1) << j for j, v in enumerate(q))
        nibbles = bytes((q[j] & 0x0F) | ((q[j + 16] & 0x0F) << 4) for j in range(16))
        out.append(dm[4 * i:4 * i + 4] + struct.pack("<I", qh) + nibbles)
    return b"".join(out)


def copy_header(src, dst, ftype):
    """Magic, hparams (ftype replaced), mel filters and vocabulary, as they are."""
    magic, *hparams = struct.unpack("<12i", src.read(48))
    if magic != 0x67676D6C:
        raise SystemExit("not a ggml model (bad magic)")
    if hparams[-1] % GGML_QNT_VERSION_FACTOR != F16:
        raise SystemExit("the model is not float16 (ftype %d): quantize the converted model" % hparams[-1])
    hparams[-1] = GGML_QNT_VERSION * GGML_QNT_VERSION_FACTOR + ftype
    dst.write(struct.pack("<12i", magic, *hparams))
    n_mel, n_fft = struct.unpack("<ii", src.read(8))
    dst.write(struct.pack("<ii", n_mel, n_fft) + src.read(4 * n_mel * n_fft))
    (n_vocab,) = struct.unpack("<i", src.read(4))
    dst.write(struct.pack("<i", n_vocab))
    for _ in range(n_vocab):
        (length,) = struct.unpack("<i", src.read(4))
        dst.write(struct.pack("<i", length) + src.read(length))


def quantize_chunks(data, width, quantize):
    """Blocks are independent: a chunk at a time keeps memory to tens of MB per tensor."""
    step = CHUNK_VALUES * width
    fmt = "f" if width == 4 else "e"
    return b"".join(quantize(struct.unpack("<%d%s" % (len(data[i:i + step]) // width, fmt), data[i:i + step]))
                    for i in range(0, len(data), step))


def copy_tensors(src, dst, qtype, quantize):
    """Each tensor: header (type changed when quantized) and data."""
    counts = [0, 0]
    while True:
        head = src.read(12)
        if not head:
            return counts
        n_dims, name_len, ttype = struct.unpack("<iii", head)
        dims = struct.unpack("<%di" % n_dims, src.read(4 * n_dims))
        name = src.read(name_len)
        n = 1
        for dim in dims:
            n *= dim
        data = src.read(n * (4 if ttype == F32 else 2))
        wanted = n_dims == 2 and name.decode() not in SKIP
        if wanted:
            if ttype not in (F32, F16) or dims[0] % 32:
                raise SystemExit("cannot quantize %s (type %d, row %d)" % (name.decode(), ttype, dims[0]))
            data, ttype = quantize_chunks(data, 4 if ttype == F32 else 2, quantize), qtype
        counts[wanted] += 1
        dst.write(struct.pack("<iii", n_dims, name_len, ttype) + struct.pack("<%di" % n_dims, *dims) + name + data)


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in TYPES:
        raise SystemExit(__doc__)
    source, target, kind = sys.argv[1:]
    ftype, qtype, _ = TYPES[kind]
    with open(source, "rb") as src, open(target, "wb") as dst:
        copy_header(src, dst, ftype)
        copied, quantized = copy_tensors(src, dst, qtype, {"q8_0": q8_0, "q5_1": q5_1}[kind])
    print("wrote %s: %d tensors quantized to %s, %d copied" % (target, quantized, kind, copied))


if __name__ == "__main__":
    main()
