//! whisper.cpp's `examples/quantize`, through the ggml that whisper-rs builds: quantizes a ggml
//! whisper model to q8_0 or q5_1 with ggml's own `ggml_quantize_chunk`.
//!
//! `cargo run --release --example ggml_quantize -- IN.bin OUT.bin q8_0|q5_1`
//!
//! `models/fetch.sh` does not need it: `models/ggml_quantize.py` (Python's standard library)
//! makes the same bytes, and this is how that claim is checked (`cmp` the two outputs).
//! Which tensors are quantized follows whisper.cpp's quantize: every 2-D tensor except the
//! convolution biases and the positional embeddings.

use std::io::{BufReader, BufWriter, Read, Write};
use std::{env, fs::File};

use anyhow::{Context, bail, ensure};
use whisper_rs_sys as sys;

const GGML_MAGIC: i32 = 0x6767_6D6C;
/// `GGML_QNT_VERSION * GGML_QNT_VERSION_FACTOR`: added to a quantized model's ftype.
const QNT_VERSION_BASE: i32 = 2 * 1000;
const SKIP: [&str; 4] =
    ["encoder.conv1.bias", "encoder.conv2.bias", "encoder.positional_embedding", "decoder.positional_embedding"];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = env::args().skip(1).collect();
    let [input, output, kind] = args.as_slice() else {
        bail!("usage: ggml_quantize IN.bin OUT.bin q8_0|q5_1");
    };
    // (ggml_ftype, ggml_type)
    let (ftype, qtype) = match kind.as_str() {
        "q8_0" => (7, sys::ggml_type_GGML_TYPE_Q8_0),
        "q5_1" => (9, sys::ggml_type_GGML_TYPE_Q5_1),
        other => bail!("unknown type {other:?}: q8_0 or q5_1"),
    };
    let mut src = BufReader::new(File::open(input).with_context(|| format!("opening {input}"))?);
    let mut dst = BufWriter::new(File::create(output).with_context(|| format!("creating {output}"))?);
    copy_header(&mut src, &mut dst, ftype)?;
    let quantized = copy_tensors(&mut src, &mut dst, qtype)?;
    dst.flush()?;
    println!("wrote {output}: {quantized} tensors quantized to {kind}");
    Ok(())
}

fn read_i32(src: &mut impl Read) -> std::io::Result<i32> {
    let mut bytes = [0u8; 4];
    src.read_exact(&mut bytes)?;
    Ok(i32::from_le_bytes(bytes))
}

fn read_bytes(src: &mut impl Read, len: usize) -> std::io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; len];
    src.read_exact(&mut bytes)?;
    Ok(bytes)
}

fn write_i32s(dst: &mut impl Write, values: &[i32]) -> std::io::Result<()> {
    values.iter().try_for_each(|v| dst.write_all(&v.to_le_bytes()))
}

/// Magic and hparams (ftype replaced), mel filters and vocabulary, copied.
fn copy_header(src: &mut impl Read, dst: &mut impl Write, ftype: i32) -> anyhow::Result<()> {
    let mut head = (0..12).map(|_| read_i32(src)).collect::<std::io::Result<Vec<i32>>>()?;
    ensure!(head[0] == GGML_MAGIC, "not a ggml model (bad magic)");
    ensure!(head[11] == 1, "the model is not float16 (ftype {})", head[11]);
    head[11] = QNT_VERSION_BASE + ftype;
    write_i32s(dst, &head)?;
    let (n_mel, n_fft) = (read_i32(src)?, read_i32(src)?);
    write_i32s(dst, &[n_mel, n_fft])?;
    dst.write_all(&read_bytes(src, 4 * usize::try_from(n_mel * n_fft)?)?)?;
    let n_vocab = read_i32(src)?;
    write_i32s(dst, &[n_vocab])?;
    for _ in 0..n_vocab {
        let len = read_i32(src)?;
        write_i32s(dst, &[len])?;
        dst.write_all(&read_bytes(src, usize::try_from(len)?)?)?;
    }
    Ok(())
}

/// Each tensor's header and data; 2-D f16 weights quantized. Returns how many were.
fn copy_tensors(src: &mut impl Read, dst: &mut impl Write, qtype: sys::ggml_type) -> anyhow::Result<usize> {
    let mut quantized = 0;
    loop {
        let n_dims = match read_i32(src) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(quantized),
            Err(e) => return Err(e.into()),
        };
        let (name_len, mut ttype) = (read_i32(src)?, read_i32(src)?);
        let dims = (0..n_dims).map(|_| read_i32(src)).collect::<std::io::Result<Vec<i32>>>()?;
        let name = read_bytes(src, usize::try_from(name_len)?)?;
        let count: usize = dims.iter().map(|&d| d as usize).product();
        let width = if ttype == 0 { 4 } else { 2 };
        let mut data = read_bytes(src, count * width)?;
        if n_dims == 2 && !SKIP.contains(&String::from_utf8_lossy(&name).as_ref()) {
            ensure!(ttype == 1, "{} is not float16", String::from_utf8_lossy(&name));
            data = quantize(&data, dims[0] as usize, qtype);
            ttype = qtype as i32;
            quantized += 1;
        }
        write_i32s(dst, &[n_dims, name_len, ttype])?;
        write_i32s(dst, &dims)?;
        dst.write_all(&name)?;
        dst.write_all(&data)?;
    }
}

/// f16 rows of `row_len` values to `qtype` blocks, by ggml.
fn quantize(f16: &[u8], row_len: usize, qtype: sys::ggml_type) -> Vec<u8> {
    let halves: Vec<u16> = f16.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect();
    let mut floats = vec![0f32; halves.len()];
    let mut out = vec![0u8; floats.len() * 4];
    // SAFETY: the buffers hold `halves.len()` values (and the output more bytes than any
    // quantized form of them needs); ggml_quantize_chunk reads nrows * n_per_row floats.
    let written = unsafe {
        sys::ggml_fp16_to_fp32_row(halves.as_ptr(), floats.as_mut_ptr(), halves.len() as i64);
        let rows = (floats.len() / row_len) as i64;
        sys::ggml_quantize_chunk(
            qtype,
            floats.as_ptr(),
            out.as_mut_ptr().cast(),
            0,
            rows,
            row_len as i64,
            std::ptr::null(),
        )
    };
    out.truncate(written);
    out
}
