//! Call recording: a stereo 16-bit PCM WAV, caller on the left, bot on the right, one frame
//! of each per 20 ms so the two sides stay time-aligned (a side with nothing to say that
//! frame is written as silence).
//!
//! The file is written as the call goes. Every `update_every` frames (and on `finish`) the
//! RIFF and data sizes in the header are rewritten and the writer flushed, so if the process
//! dies the file is still a valid WAV holding everything up to the last update; audio after
//! it is on disk too, just not counted by the header. Flushing hands the bytes to the OS,
//! which survives a crash of the process, not a power loss (that would need an fsync).
//!
//! The interleaving buffer is allocated once in `new`; `write_frame` does no allocation.

use std::io::{self, Seek, SeekFrom, Write};

const HEADER_LEN: u64 = 44;
const CHANNELS: u16 = 2;
const BYTES_PER_SAMPLE: u16 = 2;

pub struct Recorder<W: Write + Seek> {
    out: W,
    frame_len: usize,
    update_every: u32,
    interleaved: Vec<u8>,
    data_len: u32,
    frames_since_update: u32,
}

impl<W: Write + Seek> Recorder<W> {
    /// Writes a header for an empty recording (already a valid WAV) at the writer's start.
    /// `frame_len` is samples per channel per frame; `update_every` frames between header
    /// updates (50 = once a second of 20 ms frames).
    pub fn new(mut out: W, sample_rate: u32, frame_len: usize, update_every: u32) -> io::Result<Self> {
        let block_align = CHANNELS * BYTES_PER_SAMPLE;
        let byte_rate = sample_rate.checked_mul(block_align as u32).filter(|&r| r > 0);
        let (Some(byte_rate), true) = (byte_rate, frame_len > 0 && update_every > 0) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "sample rate, frame length and interval must be > 0",
            ));
        };
        let mut header = [0u8; HEADER_LEN as usize];
        header[0..4].copy_from_slice(b"RIFF");
        header[4..8].copy_from_slice(&36u32.to_le_bytes());
        header[8..16].copy_from_slice(b"WAVEfmt ");
        header[16..20].copy_from_slice(&16u32.to_le_bytes());
        header[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
        header[22..24].copy_from_slice(&CHANNELS.to_le_bytes());
        header[24..28].copy_from_slice(&sample_rate.to_le_bytes());
        header[28..32].copy_from_slice(&byte_rate.to_le_bytes());
        header[32..34].copy_from_slice(&block_align.to_le_bytes());
        header[34..36].copy_from_slice(&(BYTES_PER_SAMPLE * 8).to_le_bytes());
        header[36..40].copy_from_slice(b"data");
        out.seek(SeekFrom::Start(0))?;
        out.write_all(&header)?;
        out.flush()?;
        Ok(Recorder {
            out,
            frame_len,
            update_every,
            interleaved: vec![0; frame_len * block_align as usize],
            data_len: 0,
            frames_since_update: 0,
        })
    }

    /// Appends one frame: `None`, or a slice shorter than a frame, is padded with silence.
    /// A slice longer than a frame, or a recording past WAV's 4 GiB limit, is an error.
    pub fn write_frame(&mut self, caller: Option<&[i16]>, bot: Option<&[i16]>) -> io::Result<()> {
        let (caller, bot) = (caller.unwrap_or(&[]), bot.unwrap_or(&[]));
        if caller.len() > self.frame_len || bot.len() > self.frame_len {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "audio longer than one recorder frame"));
        }
        let frame_bytes = self.interleaved.len() as u32;
        let Some(data_len) = self.data_len.checked_add(frame_bytes).filter(|&n| n <= u32::MAX - 36) else {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "recording exceeds the WAV size limit"));
        };
        for (i, out) in self.interleaved.chunks_exact_mut(4).enumerate() {
            let left = caller.get(i).copied().unwrap_or(0);
            let right = bot.get(i).copied().unwrap_or(0);
            out[..2].copy_from_slice(&left.to_le_bytes());
            out[2..].copy_from_slice(&right.to_le_bytes());
        }
        self.out.write_all(&self.interleaved)?;
        self.data_len = data_len;
        self.frames_since_update += 1;
        if self.frames_since_update >= self.update_every {
            self.update_header()?;
        }
        Ok(())
    }

    /// Frames recorded so far.
    pub fn duration_frames(&self) -> u32 {
        self.data_len / self.interleaved.len() as u32
    }

    /// Writes the final sizes and hands the writer back.
    pub fn finish(mut self) -> io::Result<W> {
        self.update_header()?;
        Ok(self.out)
    }

    fn update_header(&mut self) -> io::Result<()> {
        self.out.seek(SeekFrom::Start(4))?;
        self.out.write_all(&(36 + self.data_len).to_le_bytes())?;
        self.out.seek(SeekFrom::Start(40))?;
        self.out.write_all(&self.data_len.to_le_bytes())?;
        self.out.seek(SeekFrom::Start(HEADER_LEN + self.data_len as u64))?;
        self.out.flush()?;
        self.frames_since_update = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const LEN: usize = 160;

    /// Minimal strict WAV reader: 44-byte PCM header, sizes consistent with the file.
    struct Wav {
        channels: u16,
        sample_rate: u32,
        bits: u16,
        samples: Vec<i16>,
    }

    fn parse(bytes: &[u8]) -> Wav {
        let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
        assert!(bytes.len() >= 44, "file shorter than a header");
        assert_eq!(&bytes[0..4], b"RIFF");
        assert_eq!(&bytes[8..16], b"WAVEfmt ");
        assert_eq!((u32_at(16), u16_at(20)), (16, 1), "PCM fmt chunk");
        assert_eq!(&bytes[36..40], b"data");
        let (channels, sample_rate, bits) = (u16_at(22), u32_at(24), u16_at(34));
        assert_eq!(u16_at(32), channels * bits / 8, "block align");
        assert_eq!(u32_at(28), sample_rate * u32::from(u16_at(32)), "byte rate");
        let data_len = u32_at(40) as usize;
        assert_eq!(u32_at(4) as usize, 36 + data_len, "RIFF size");
        assert!(bytes.len() >= 44 + data_len, "data chunk runs past the end of the file");
        let samples = bytes[44..44 + data_len].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
        Wav { channels, sample_rate, bits, samples }
    }

    fn tone(id: i16) -> [i16; LEN] {
        std::array::from_fn(|i| id * 100 + i as i16)
    }

    #[test]
    fn stereo_frames_are_time_aligned_with_silence_for_a_quiet_side() {
        let mut rec = Recorder::new(Cursor::new(Vec::new()), 8000, LEN, 50).unwrap();
        rec.write_frame(Some(&tone(1)), None).unwrap();
        rec.write_frame(None, Some(&tone(2))).unwrap();
        rec.write_frame(Some(&tone(3)), Some(&tone(4))).unwrap();
        rec.write_frame(Some(&tone(5)[..100]), None).unwrap();
        assert_eq!(rec.duration_frames(), 4);
        let wav = parse(&rec.finish().unwrap().into_inner());
        assert_eq!((wav.channels, wav.sample_rate, wav.bits), (2, 8000, 16));
        assert_eq!(wav.samples.len(), 4 * LEN * 2);
        let left: Vec<i16> = wav.samples.iter().step_by(2).copied().collect();
        let right: Vec<i16> = wav.samples.iter().skip(1).step_by(2).copied().collect();
        let silence = [0i16; LEN];
        assert_eq!(left[..LEN], tone(1));
        assert_eq!(right[..LEN], silence);
        assert_eq!(left[LEN..2 * LEN], silence);
        assert_eq!(right[LEN..2 * LEN], tone(2));
        assert_eq!(left[2 * LEN..3 * LEN], tone(3));
        assert_eq!(right[2 * LEN..3 * LEN], tone(4));
        assert_eq!(left[3 * LEN..3 * LEN + 100], tone(5)[..100]);
        assert!(left[3 * LEN + 100..].iter().all(|&s| s == 0), "short frame padded with silence");
    }

    #[test]
    fn an_empty_recording_is_a_valid_wav() {
        let rec = Recorder::new(Cursor::new(Vec::new()), 16000, 320, 50).unwrap();
        let wav = parse(&rec.finish().unwrap().into_inner());
        assert_eq!((wav.sample_rate, wav.samples.len()), (16000, 0));
    }

    #[test]
    fn a_file_whose_writer_died_keeps_audio_up_to_the_last_header_update() {
        let path = tempfile::NamedTempFile::new().unwrap().into_temp_path();
        let file = std::fs::File::create(&path).unwrap();
        let mut rec = Recorder::new(file, 8000, LEN, 5).unwrap();
        for i in 0..12 {
            rec.write_frame(Some(&tone(i)), Some(&tone(-i))).unwrap();
        }
        // No finish(): as if the process died. Headers were updated after frames 5 and 10.
        drop(rec);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 44 + 12 * LEN * 4, "the two frames after the update are on disk too");
        let wav = parse(&bytes);
        assert_eq!(wav.samples.len(), 10 * LEN * 2);
        for (i, frame) in wav.samples.chunks_exact(LEN * 2).enumerate() {
            let left: Vec<i16> = frame.iter().step_by(2).copied().collect();
            let right: Vec<i16> = frame.iter().skip(1).step_by(2).copied().collect();
            assert_eq!(left, tone(i as i16), "frame {i} left");
            assert_eq!(right, tone(-(i as i16)), "frame {i} right");
        }
    }

    #[test]
    fn oversized_frames_are_refused_without_writing() {
        let mut buf = Cursor::new(Vec::new());
        let mut rec = Recorder::new(&mut buf, 8000, LEN, 50).unwrap();
        let err = rec.write_frame(Some(&[0; LEN + 1]), None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        rec.finish().unwrap();
        assert_eq!(parse(buf.get_ref()).samples.len(), 0);
        assert!(Recorder::new(Cursor::new(Vec::new()), 8000, 0, 50).is_err());
        assert!(Recorder::new(Cursor::new(Vec::new()), 0, LEN, 50).is_err());
    }
}
