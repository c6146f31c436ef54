//! PCM16 helpers: i16 <-> f32 (what resamplers and models take) and little-endian bytes (what
//! WAV files and Twilio's base64 payloads carry). Each writes into the caller's buffer and
//! returns how many samples it converted: the shorter of the two lengths.

/// Full scale is 32768 so that -32768 maps to exactly -1.0.
const SCALE: f32 = 32768.0;

/// One sample to f32 at full scale ±1.0.
#[inline]
pub fn sample_to_f32(s: i16) -> f32 {
    f32::from(s) / SCALE
}

/// One f32 sample (full scale ±1.0) to i16: rounded, clipped, NaN to 0.
#[inline]
pub fn sample_to_i16(s: f32) -> i16 {
    (s * SCALE).round() as i16
}

pub fn i16_to_f32(src: &[i16], dst: &mut [f32]) -> usize {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = sample_to_f32(s);
    }
    src.len().min(dst.len())
}

/// Rounds to the nearest sample and clips to the i16 range; NaN becomes 0 (an `as` cast
/// saturates and maps NaN to 0), so a model's stray output cannot wrap around.
pub fn f32_to_i16(src: &[f32], dst: &mut [i16]) -> usize {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = sample_to_i16(s);
    }
    src.len().min(dst.len())
}

/// Reads whole samples only; an odd trailing byte is left unread.
pub fn i16_from_le_bytes(src: &[u8], dst: &mut [i16]) -> usize {
    for (d, b) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *d = i16::from_le_bytes([b[0], b[1]]);
    }
    (src.len() / 2).min(dst.len())
}

/// Returns the number of samples written (two bytes each).
pub fn i16_to_le_bytes(src: &[i16], dst: &mut [u8]) -> usize {
    for (d, &s) in dst.chunks_exact_mut(2).zip(src) {
        d.copy_from_slice(&s.to_le_bytes());
    }
    src.len().min(dst.len() / 2)
}

/// Where audible sound starts in `samples`, less `keep` samples of lead-in: synthesized speech
/// opens with 50-75 ms of near-silence, which is pure delay before a reply is heard.
/// `threshold` is an absolute sample level; all-quiet input gives `samples.len()`.
pub fn leading_silence(samples: &[i16], threshold: i16, keep: usize) -> usize {
    let threshold = threshold.unsigned_abs();
    match samples.iter().position(|s| s.unsigned_abs() > threshold) {
        Some(first) => first.saturating_sub(keep),
        None => samples.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_i16_survives_f32_and_back() {
        let all: Vec<i16> = (i16::MIN..=i16::MAX).collect();
        let mut f = vec![0f32; all.len()];
        let mut back = vec![0i16; all.len()];
        assert_eq!(i16_to_f32(&all, &mut f), all.len());
        assert!(f.iter().all(|x| (-1.0..1.0).contains(x)));
        assert_eq!((f[0], f[32768]), (-1.0, 0.0));
        assert_eq!(f32_to_i16(&f, &mut back), all.len());
        assert_eq!(back, all);
    }

    #[test]
    fn f32_out_of_range_clips_and_nan_is_silence() {
        let mut out = [7i16; 6];
        f32_to_i16(&[1.5, -3.0, f32::NAN, 0.5, f32::INFINITY, 1.0], &mut out);
        assert_eq!(out, [i16::MAX, i16::MIN, 0, 16384, i16::MAX, i16::MAX]);
    }

    #[test]
    fn le_bytes_round_trip_and_layout() {
        let samples = [0i16, 1, -1, i16::MIN, i16::MAX, 0x1234];
        let mut bytes = [0u8; 12];
        assert_eq!(i16_to_le_bytes(&samples, &mut bytes), 6);
        assert_eq!(&bytes[..4], &[0, 0, 1, 0]);
        assert_eq!(&bytes[10..], &[0x34, 0x12]);
        let mut back = [0i16; 6];
        assert_eq!(i16_from_le_bytes(&bytes, &mut back), 6);
        assert_eq!(back, samples);
    }

    #[test]
    fn le_bytes_stop_at_the_shorter_buffer() {
        let mut back = [0i16; 4];
        assert_eq!(i16_from_le_bytes(&[1, 0, 2, 0, 3], &mut back), 2, "odd trailing byte is not a sample");
        assert_eq!(back, [1, 2, 0, 0]);
        let mut bytes = [0u8; 3];
        assert_eq!(i16_to_le_bytes(&[5, 6], &mut bytes), 1);
        assert_eq!(bytes, [5, 0, 0]);
    }

    #[test]
    fn leading_silence_keeps_a_short_lead_in() {
        let mut audio = vec![3i16; 400];
        audio.extend([-2000, 500, 0]);
        assert_eq!(leading_silence(&audio, 800, 80), 320);
        assert_eq!(leading_silence(&audio, 800, 1000), 0);
        assert_eq!(leading_silence(&[0, 5, -7], 800, 10), 3);
        assert_eq!(leading_silence(&[i16::MIN], 800, 0), 0);
    }
}
