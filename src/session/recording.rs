//! The call's stereo recording (caller left, bot right), written as the call goes: a crash
//! loses at most the last second (the WAV header is rewritten every second), and writes go
//! through a buffer, one write a second instead of fifty.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::media::recorder::Recorder;
use crate::session::core::{FRAME, Frame, RATE};

/// A side that runs more than this many frames ahead of the other (a stalled stream) is
/// written against silence.
const MAX_SKEW: usize = 10;

pub struct CallRecording {
    recorder: Recorder<BufWriter<File>>,
    path: PathBuf,
    caller: VecDeque<Frame>,
    bot: VecDeque<Option<Frame>>,
}

/// The finished file.
pub struct Recorded {
    pub bytes: i64,
    pub duration_ms: i64,
}

impl CallRecording {
    pub fn create(path: &Path) -> std::io::Result<CallRecording> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // Sized for a second of stereo 16-bit audio: the header rewrite flushes it anyway.
        let file = BufWriter::with_capacity(64 * 1024, File::create(path)?);
        Ok(CallRecording {
            recorder: Recorder::new(file, RATE, FRAME, 50)?,
            path: path.to_path_buf(),
            caller: VecDeque::new(),
            bot: VecDeque::new(),
        })
    }

    pub fn caller(&mut self, frame: &Frame) {
        self.caller.push_back(*frame);
    }

    /// One 20 ms slot of the bot's side: a frame sent, or `None` for silence.
    pub fn bot(&mut self, frame: Option<&Frame>) {
        self.bot.push_back(frame.copied());
    }

    /// Writes the frames both sides have, pairing them in order.
    pub fn write_paired(&mut self) -> std::io::Result<()> {
        while (!self.caller.is_empty() && !self.bot.is_empty())
            || self.caller.len() > MAX_SKEW
            || self.bot.len() > MAX_SKEW
        {
            self.write_one()?;
        }
        Ok(())
    }

    fn write_one(&mut self) -> std::io::Result<()> {
        let caller = self.caller.pop_front();
        let bot = self.bot.pop_front().flatten();
        self.recorder.write_frame(caller.as_ref().map(|f| &f[..]), bot.as_ref().map(|f| &f[..]))
    }

    /// Writes whatever is left and makes the header final.
    pub fn finish(mut self) -> std::io::Result<Recorded> {
        while !self.caller.is_empty() || !self.bot.is_empty() {
            self.write_one()?;
        }
        let frames = self.recorder.duration_frames();
        let mut file = self.recorder.finish()?;
        file.flush()?;
        drop(file);
        let bytes = std::fs::metadata(&self.path).map(|m| m.len() as i64).unwrap_or(0);
        Ok(Recorded { bytes, duration_ms: i64::from(frames) * 20 })
    }
}
