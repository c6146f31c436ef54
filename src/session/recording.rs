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
    /// `None` once the recording failed (a full disk, say): the call goes on without it.
    recorder: Option<Recorder<BufWriter<File>>>,
    path: PathBuf,
    caller: VecDeque<Frame>,
    bot: VecDeque<Option<Frame>>,
    failed: Option<String>,
}

/// The finished file.
pub struct Recorded {
    pub bytes: i64,
    pub duration_ms: i64,
}

impl CallRecording {
    /// Starts the file; a file that cannot be made leaves a failed recording, not a failed call.
    pub fn create(path: &Path) -> CallRecording {
        let mut recording = CallRecording {
            recorder: None,
            path: path.to_path_buf(),
            caller: VecDeque::new(),
            bot: VecDeque::new(),
            failed: None,
        };
        match Self::open(path) {
            Ok(recorder) => recording.recorder = Some(recorder),
            Err(error) => recording.fail(&error),
        }
        recording
    }

    fn open(path: &Path) -> std::io::Result<Recorder<BufWriter<File>>> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // Sized for a second of stereo 16-bit audio: the header rewrite flushes it anyway.
        let file = BufWriter::with_capacity(64 * 1024, File::create(path)?);
        Recorder::new(file, RATE, FRAME, 50)
    }

    fn fail(&mut self, error: &std::io::Error) {
        tracing::warn!(path = %self.path.display(), %error, "the call's recording failed; the call goes on without it");
        self.failed = Some(error.to_string());
        self.recorder = None;
        self.caller.clear();
        self.bot.clear();
    }

    pub fn caller(&mut self, frame: &Frame) {
        if self.recorder.is_some() {
            self.caller.push_back(*frame);
        }
    }

    /// One 20 ms slot of the bot's side: a frame sent, or `None` for silence.
    pub fn bot(&mut self, frame: Option<&Frame>) {
        if self.recorder.is_some() {
            self.bot.push_back(frame.copied());
        }
    }

    /// Writes the frames both sides have, pairing them in order. A write error ends the
    /// recording, never the call.
    pub fn write_paired(&mut self) {
        while (!self.caller.is_empty() && !self.bot.is_empty())
            || self.caller.len() > MAX_SKEW
            || self.bot.len() > MAX_SKEW
        {
            if let Err(error) = self.write_one() {
                self.fail(&error);
                return;
            }
        }
    }

    fn write_one(&mut self) -> std::io::Result<()> {
        let caller = self.caller.pop_front();
        let bot = self.bot.pop_front().flatten();
        match self.recorder.as_mut() {
            Some(recorder) => recorder.write_frame(caller.as_ref().map(|f| &f[..]), bot.as_ref().map(|f| &f[..])),
            None => Ok(()),
        }
    }

    /// Writes whatever is left and makes the header final; `Err` says why there is no
    /// recording.
    pub fn finish(mut self) -> Result<Recorded, String> {
        while !self.caller.is_empty() || !self.bot.is_empty() {
            if let Err(error) = self.write_one() {
                self.fail(&error);
            }
        }
        if let Some(reason) = self.failed.take() {
            return Err(reason);
        }
        let Some(recorder) = self.recorder.take() else { return Err("no recording was made".into()) };
        let frames = recorder.duration_frames();
        let finished = recorder.finish().and_then(|mut file| file.flush());
        if let Err(error) = finished {
            tracing::warn!(path = %self.path.display(), %error, "cannot finish the call's recording");
            return Err(error.to_string());
        }
        let bytes = std::fs::metadata(&self.path).map(|m| m.len() as i64).unwrap_or(0);
        Ok(Recorded { bytes, duration_ms: i64::from(frames) * 20 })
    }
}
