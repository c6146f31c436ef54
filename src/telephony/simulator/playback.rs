//! Twilio's playback buffer for a bidirectional stream, emulated: the audio the gateway sends
//! (`media`) is queued and played one 20 ms frame per tick; a `mark` comes back once all audio
//! sent before it has played; `clear` drops the queue and returns every pending mark at once.
//! That is the behaviour Twilio documents for `mark` and `clear`, and what the gateway relies
//! on to know when a line finished and to stop talking on barge-in.

use std::collections::VecDeque;

use crate::telephony::twilio::stream::{CHUNK_SAMPLES, MULAW_SILENCE};

#[derive(Debug)]
enum Queued {
    Audio(Vec<u8>),
    Mark(String),
}

#[derive(Debug, Default)]
pub struct PlaybackBuffer {
    queue: VecDeque<Queued>,
    /// Bytes of the front audio item already played.
    played_of_front: usize,
}

/// What one tick of playback produced.
#[derive(Debug, Default, PartialEq)]
pub struct Tick {
    /// The frame the callee hears (silence when nothing is queued), 160 µ-law bytes.
    pub frame: Vec<u8>,
    /// True when the frame holds gateway audio (false: filled with silence).
    pub audible: bool,
    /// Marks whose audio has now fully played.
    pub marks: Vec<String>,
}

impl PlaybackBuffer {
    pub fn push_media(&mut self, payload: Vec<u8>) {
        if !payload.is_empty() {
            self.queue.push_back(Queued::Audio(payload));
        }
    }

    pub fn push_mark(&mut self, name: String) {
        self.queue.push_back(Queued::Mark(name));
    }

    /// Drops all queued audio; returns the marks that were pending, in order.
    pub fn clear(&mut self) -> Vec<String> {
        self.played_of_front = 0;
        self.queue
            .drain(..)
            .filter_map(|q| match q {
                Queued::Mark(name) => Some(name),
                Queued::Audio(_) => None,
            })
            .collect()
    }

    pub fn queued_bytes(&self) -> usize {
        self.queue.iter().map(|q| if let Queued::Audio(a) = q { a.len() } else { 0 }).sum::<usize>()
            - self.played_of_front
    }

    /// Plays the next 20 ms.
    pub fn tick(&mut self) -> Tick {
        let mut tick = Tick { frame: Vec::with_capacity(CHUNK_SAMPLES), ..Tick::default() };
        self.take_marks(&mut tick.marks);
        while tick.frame.len() < CHUNK_SAMPLES {
            let Some(Queued::Audio(audio)) = self.queue.front() else {
                break;
            };
            let wanted = CHUNK_SAMPLES - tick.frame.len();
            let available = audio.len() - self.played_of_front;
            let take = wanted.min(available);
            tick.frame.extend_from_slice(&audio[self.played_of_front..self.played_of_front + take]);
            tick.audible = true;
            self.played_of_front += take;
            if self.played_of_front == audio.len() {
                self.queue.pop_front();
                self.played_of_front = 0;
                // Marks right after this audio are done once it has played, i.e. now.
                self.take_marks(&mut tick.marks);
            }
        }
        tick.frame.resize(CHUNK_SAMPLES, MULAW_SILENCE);
        tick
    }

    fn take_marks(&mut self, marks: &mut Vec<String>) {
        while let Some(Queued::Mark(_)) = self.queue.front() {
            if let Some(Queued::Mark(name)) = self.queue.pop_front() {
                marks.push(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plays_audio_in_frames_and_returns_marks_when_their_audio_has_played() {
        let mut buffer = PlaybackBuffer::default();
        buffer.push_media(vec![1; 240]);
        buffer.push_mark("line-1".into());
        buffer.push_media(vec![2; 160]);
        buffer.push_mark("line-2".into());

        let first = buffer.tick();
        assert!(first.audible && first.marks.is_empty());
        assert_eq!(first.frame, vec![1; 160]);
        // 80 bytes of line 1 finish inside this frame, then line 2 starts.
        let second = buffer.tick();
        assert_eq!(second.marks, vec!["line-1".to_string()]);
        assert_eq!(&second.frame[..80], &[1; 80][..]);
        assert_eq!(&second.frame[80..], &[2; 80][..]);
        let third = buffer.tick();
        assert_eq!(third.marks, vec!["line-2".to_string()]);
        assert_eq!(third.frame[..80], [2; 80]);
        assert_eq!(third.frame[80..], [MULAW_SILENCE; 80]);
        let idle = buffer.tick();
        assert!(!idle.audible && idle.marks.is_empty());
    }

    #[test]
    fn clear_drops_audio_and_returns_pending_marks_at_once() {
        let mut buffer = PlaybackBuffer::default();
        buffer.push_media(vec![1; 1600]);
        buffer.push_mark("a".into());
        buffer.push_media(vec![1; 1600]);
        buffer.push_mark("b".into());
        buffer.tick();
        assert_eq!(buffer.queued_bytes(), 3200 - 160);
        assert_eq!(buffer.clear(), vec!["a".to_string(), "b".to_string()]);
        assert_eq!(buffer.queued_bytes(), 0);
        assert!(!buffer.tick().audible);
    }

    #[test]
    fn a_mark_with_nothing_queued_comes_back_on_the_next_tick() {
        let mut buffer = PlaybackBuffer::default();
        buffer.push_mark("now".into());
        assert_eq!(buffer.tick().marks, vec!["now".to_string()]);
    }
}
