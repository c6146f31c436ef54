//! G.711 µ-law (PCMU) and A-law (PCMA), bit-exact with the ITU-T G.191 reference
//! (`ulaw_compress`/`ulaw_expand`, `alaw_compress`/`alaw_expand` in the STL's `g711.c`).
//!
//! Decoding is a lookup in a 256-entry table built at compile time. Encoding uses the
//! segment algorithm with `leading_zeros` instead of a 64 K-entry table: it is a handful of
//! integer operations and keeps the cache free for the rest of the call's work.
//!
//! Negative inputs are folded with the ones' complement (`!x`, i.e. `-x - 1`), as G.191 does.
//! The older Sun `linear2ulaw` folds with `-x` and so picks the neighbouring code for a few
//! negative values that sit on a decision boundary; every decoded value and every code's
//! round trip are the same in both.
//!
//! The slice functions write into the caller's buffer and return how many samples they wrote
//! (the shorter of the two lengths), so a 20 ms frame costs no allocation.

/// Which G.711 law a stream uses: RTP payload type 0 (PCMU) or 8 (PCMA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Law {
    Ulaw,
    Alaw,
}

impl Law {
    pub fn decode(self, src: &[u8], dst: &mut [i16]) -> usize {
        match self {
            Law::Ulaw => decode_ulaw(src, dst),
            Law::Alaw => decode_alaw(src, dst),
        }
    }

    pub fn encode(self, src: &[i16], dst: &mut [u8]) -> usize {
        match self {
            Law::Ulaw => encode_ulaw(src, dst),
            Law::Alaw => encode_alaw(src, dst),
        }
    }
}

const ULAW_BIAS: i16 = 0x84;

const fn ulaw_expand(code: u8) -> i16 {
    let u = !code;
    let t = ((((u & 0x0F) as i16) << 3) + ULAW_BIAS) << ((u & 0x70) >> 4);
    if u & 0x80 != 0 { ULAW_BIAS - t } else { t - ULAW_BIAS }
}

const fn alaw_expand(code: u8) -> i16 {
    let a = code ^ 0x55;
    let seg = (a & 0x70) >> 4;
    let mut t = ((a & 0x0F) as i16) << 4;
    t += if seg == 0 { 8 } else { 0x108 };
    if seg > 1 {
        t <<= seg - 1;
    }
    if a & 0x80 != 0 { t } else { -t }
}

// Function pointers cannot be called in a const fn, hence a macro per law.
macro_rules! table {
    ($expand:ident) => {{
        let mut t = [0i16; 256];
        let mut i = 0;
        while i < 256 {
            t[i] = $expand(i as u8);
            i += 1;
        }
        t
    }};
}

static ULAW_TO_LINEAR: [i16; 256] = table!(ulaw_expand);
static ALAW_TO_LINEAR: [i16; 256] = table!(alaw_expand);

#[inline]
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_TO_LINEAR[code as usize]
}

#[inline]
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_TO_LINEAR[code as usize]
}

/// Ones' complement fold of the sign: `(magnitude, sign bit of the code)`.
#[inline]
fn fold(sample: i16) -> (u16, u8) {
    if sample < 0 { (!sample as u16, 0x00) } else { (sample as u16, 0x80) }
}

#[inline]
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let (magnitude, sign) = fold(sample);
    // 14-bit magnitude plus the bias (33 on this scale, 0x84 on the 16-bit one), clipped so the
    // top segment saturates at its last code.
    let biased = ((magnitude >> 2) + 33).min(0x1FFF);
    // `biased` is at least 33, so its top bit is bit 5..12: segments 0..7.
    let segment = (15 - biased.leading_zeros() as u16) - 5;
    let mantissa = (biased >> (segment + 1)) & 0x0F;
    (!((segment << 4) | mantissa) as u8 & 0x7F) | sign
}

#[inline]
pub fn linear_to_alaw(sample: i16) -> u8 {
    let (magnitude, sign) = fold(sample);
    let ix = magnitude >> 4; // 13-bit scale: 0..=2047
    let code = if ix < 16 {
        ix
    } else {
        // Top bit 4..10 is segment 1..7; segment 1 keeps the mantissa unshifted.
        let segment = (15 - ix.leading_zeros() as u16) - 3;
        (segment << 4) | ((ix >> (segment - 1)) & 0x0F)
    };
    (code as u8 | sign) ^ 0x55
}

pub fn decode_ulaw(src: &[u8], dst: &mut [i16]) -> usize {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = ulaw_to_linear(s);
    }
    src.len().min(dst.len())
}

pub fn decode_alaw(src: &[u8], dst: &mut [i16]) -> usize {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = alaw_to_linear(s);
    }
    src.len().min(dst.len())
}

pub fn encode_ulaw(src: &[i16], dst: &mut [u8]) -> usize {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = linear_to_ulaw(s);
    }
    src.len().min(dst.len())
}

pub fn encode_alaw(src: &[i16], dst: &mut [u8]) -> usize {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = linear_to_alaw(s);
    }
    src.len().min(dst.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ITU-T G.191 STL `g711.c` routines, transcribed loop for loop from their published
    /// text, one sample at a time. They are the oracle: the code above is checked against
    /// them, never against its own tables.
    mod itu {
        pub fn ulaw_compress(lin: i16) -> u8 {
            let lin = lin as i32;
            let mut absno = if lin < 0 { ((!lin) >> 2) + 33 } else { (lin >> 2) + 33 };
            if absno > 0x1FFF {
                absno = 0x1FFF;
            }
            let mut i = absno >> 6;
            let mut segno = 1;
            while i != 0 {
                segno += 1;
                i >>= 1;
            }
            let high_nibble = 0x0008 - segno;
            let low_nibble = 0x000F - ((absno >> segno) & 0x000F);
            let mut log = (high_nibble << 4) | low_nibble;
            if lin >= 0 {
                log |= 0x0080;
            }
            log as u8
        }

        pub fn ulaw_expand(log: u8) -> i16 {
            let log = log as i32;
            let sign = if log < 0x0080 { -1 } else { 1 };
            let mut mantissa = !log;
            let exponent = (mantissa >> 4) & 0x0007;
            let segment = exponent + 1;
            mantissa &= 0x000F;
            let step = 4 << segment;
            (sign * ((0x0080 << exponent) + step * mantissa + step / 2 - 4 * 33)) as i16
        }

        pub fn alaw_compress(lin: i16) -> u8 {
            let lin = lin as i32;
            let mut ix = if lin < 0 { (!lin) >> 4 } else { lin >> 4 };
            if ix > 15 {
                let mut iexp = 1;
                while ix > 16 + 15 {
                    ix >>= 1;
                    iexp += 1;
                }
                ix -= 16;
                ix += iexp << 4;
            }
            if lin >= 0 {
                ix |= 0x0080;
            }
            (ix ^ 0x0055) as u8
        }

        pub fn alaw_expand(log: u8) -> i16 {
            let log = log as i32;
            let mut ix = log ^ 0x0055;
            ix &= 0x007F;
            let iexp = ix >> 4;
            let mut mant = ix & 0x000F;
            if iexp > 0 {
                mant += 16;
            }
            mant = (mant << 4) + 0x0008;
            if iexp > 1 {
                mant <<= iexp - 1;
            }
            (if log > 127 { mant } else { -mant }) as i16
        }
    }

    fn all_samples() -> impl Iterator<Item = i16> {
        i16::MIN..=i16::MAX
    }

    #[test]
    fn ulaw_known_values() {
        for (code, linear) in [(0xFF, 0), (0x7F, 0), (0x00, -32124), (0x80, 32124), (0xFE, 8), (0x7E, -8), (0xEF, 132)]
        {
            assert_eq!(ulaw_to_linear(code), linear, "decode {code:#04x}");
            assert_eq!(itu::ulaw_expand(code), linear, "reference decode {code:#04x}");
        }
        for (linear, code) in [(0, 0xFF), (-1, 0x7F), (32767, 0x80), (-32768, 0x00), (32124, 0x80), (8, 0xFE)] {
            assert_eq!(linear_to_ulaw(linear), code, "encode {linear}");
            assert_eq!(itu::ulaw_compress(linear), code, "reference encode {linear}");
        }
    }

    #[test]
    fn alaw_known_values() {
        for (code, linear) in [(0xD5, 8), (0x55, -8), (0xAA, 32256), (0x2A, -32256), (0xD4, 24), (0xC5, 264)] {
            assert_eq!(alaw_to_linear(code), linear, "decode {code:#04x}");
            assert_eq!(itu::alaw_expand(code), linear, "reference decode {code:#04x}");
        }
        for (linear, code) in [(0, 0xD5), (-1, 0x55), (32767, 0xAA), (-32768, 0x2A), (15, 0xD5), (16, 0xD4)] {
            assert_eq!(linear_to_alaw(linear), code, "encode {linear}");
            assert_eq!(itu::alaw_compress(linear), code, "reference encode {linear}");
        }
    }

    #[test]
    fn decode_tables_match_reference_for_every_code() {
        for code in 0..=255u8 {
            assert_eq!(ulaw_to_linear(code), itu::ulaw_expand(code), "µ-law {code:#04x}");
            assert_eq!(alaw_to_linear(code), itu::alaw_expand(code), "A-law {code:#04x}");
        }
    }

    #[test]
    fn encode_matches_reference_for_every_sample() {
        for s in all_samples() {
            assert_eq!(linear_to_ulaw(s), itu::ulaw_compress(s), "µ-law {s}");
            assert_eq!(linear_to_alaw(s), itu::alaw_compress(s), "A-law {s}");
        }
    }

    #[test]
    fn encode_of_decode_is_identity() {
        for code in 0..=255u8 {
            // 0x7F is µ-law's "negative zero": it decodes to 0, which encodes as 0xFF.
            let expected_ulaw = if code == 0x7F { 0xFF } else { code };
            assert_eq!(linear_to_ulaw(ulaw_to_linear(code)), expected_ulaw, "µ-law {code:#04x}");
            assert_eq!(linear_to_alaw(alaw_to_linear(code)), code, "A-law {code:#04x}");
        }
    }

    /// Codes ordered from the most negative to the most positive value.
    fn ulaw_codes_ascending() -> impl Iterator<Item = u8> {
        (0x00..=0x7F).chain((0x80..=0xFF).rev())
    }

    fn alaw_codes_ascending() -> impl Iterator<Item = u8> {
        // Magnitude rises with the code once the 0x55 inversion is undone.
        (0..=0x7Fu8).rev().map(|m| m ^ 0x55).chain((0x80..=0xFFu8).map(|m| m ^ 0x55))
    }

    #[test]
    fn decode_is_monotonic() {
        let ulaw: Vec<i16> = ulaw_codes_ascending().map(ulaw_to_linear).collect();
        assert!(ulaw.windows(2).all(|w| w[0] <= w[1]), "{ulaw:?}");
        // Only the two zeros (0x7F, 0xFF) may be equal.
        assert_eq!(ulaw.windows(2).filter(|w| w[0] == w[1]).count(), 1);
        let alaw: Vec<i16> = alaw_codes_ascending().map(alaw_to_linear).collect();
        assert!(alaw.windows(2).all(|w| w[0] < w[1]), "{alaw:?}");
    }

    /// Quantisation step of the segment a decoded value lies in, on the 16-bit scale.
    fn ulaw_step(code: u8) -> i32 {
        let segment = ((!code & 0x70) >> 4) as i32;
        8 << segment
    }

    fn alaw_step(code: u8) -> i32 {
        let segment = (((code ^ 0x55) & 0x70) >> 4) as i32;
        16 << segment.max(1).saturating_sub(1)
    }

    #[test]
    fn quantisation_error_within_half_a_step() {
        for s in all_samples() {
            let u = linear_to_ulaw(s);
            let err = (ulaw_to_linear(u) as i32 - s as i32).abs();
            // Each code decodes to the middle of its interval; past the clip level the error is
            // the distance to the largest value.
            let bound = if (s as i32).abs() > 32635 { 32768 - 32124 } else { ulaw_step(u) / 2 };
            assert!(err <= bound, "µ-law {s}: code {u:#04x} error {err} > {bound}");

            let a = linear_to_alaw(s);
            let err = (alaw_to_linear(a) as i32 - s as i32).abs();
            let bound = alaw_step(a) / 2;
            assert!(err <= bound, "A-law {s}: code {a:#04x} error {err} > {bound}");
        }
    }

    #[test]
    fn slices_write_the_shorter_length() {
        let pcm: Vec<i16> = (0..160).map(|i| (i * 400 - 32000) as i16).collect();
        let mut coded = [0u8; 160];
        let mut back = [0i16; 160];
        for law in [Law::Ulaw, Law::Alaw] {
            assert_eq!(law.encode(&pcm, &mut coded), 160);
            assert_eq!(law.decode(&coded, &mut back), 160);
            for (i, (&c, &b)) in coded.iter().zip(&back).enumerate() {
                let (enc, dec) = match law {
                    Law::Ulaw => (linear_to_ulaw(pcm[i]), ulaw_to_linear(c)),
                    Law::Alaw => (linear_to_alaw(pcm[i]), alaw_to_linear(c)),
                };
                assert_eq!((c, b), (enc, dec));
            }
        }
        let mut short = [0u8; 10];
        assert_eq!(encode_ulaw(&pcm, &mut short), 10);
        assert_eq!(decode_alaw(&short[..4], &mut back), 4);
    }
}
