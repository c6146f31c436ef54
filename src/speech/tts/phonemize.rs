//! Clauses to IPA phonemes through the `espeak-ng` command line, and IPA to the phoneme
//! sequence a Piper voice was trained on.
//!
//! espeak-ng is GPL-3.0, so it is run as a separate program (`espeak-ng -q --ipa -v VOICE`),
//! never linked. Read from stdin, it phonemizes each input line as soon as the line ends and
//! prints one output line per clause it finds. A request is written as one line per clause,
//! each followed by a fixed sentinel line; the answer to a clause is every line printed before
//! the sentinel's own (known) phonemes. That keeps one long-lived process per worker in step
//! without knowing how many lines espeak-ng will print for a clause (it breaks `Mr. Smith` in
//! two, for example). `EspeakMode::PerCall` runs one process per sentence instead (a fresh
//! process costs ~15 ms; see docs/BENCHMARKS.md).
//!
//! What Piper's phonemizer (piper-phonemize, used to train the voices) does with espeak-ng's
//! output, and `assemble` reproduces: language-switch flags such as `(fr)` are removed, the
//! IPA is NFD-decomposed (`ç` -> `c` + U+0327, both in the id map), and the clause's
//! punctuation is put back: `.` `?` `!` as is, `,` `:` `;` followed by a space.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::time::{Duration, Instant};

use unicode_normalization::UnicodeNormalization;

use crate::speech::SpeechError;

/// Text written after each clause; its phonemes mark the end of the clause's answer. Letters
/// no word is made of, so no real clause phonemizes to the same line.
const SENTINEL: &str = "Qzqxq";

/// espeak-ng's stdin reader takes at most 999 bytes per line; longer lines would be split in
/// the middle of a word, so longer clauses are sent in pieces cut at spaces.
const MAX_LINE_BYTES: usize = 900;

const INSTALL_HINT: &str = "install espeak-ng (Debian/Ubuntu: `apt-get install espeak-ng`)";

/// How the phonemizer runs espeak-ng.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EspeakMode {
    /// One process kept per worker and espeak-ng voice, fed line by line.
    Persistent,
    /// One process per sentence (simpler, ~15 ms more per sentence).
    PerCall,
}

/// An espeak-ng phonemizer for one espeak-ng voice (e.g. `en-us`).
pub struct Espeak {
    program: PathBuf,
    voice: String,
    mode: EspeakMode,
    timeout: Duration,
    sentinel_ipa: String,
    process: Option<EspeakProcess>,
}

impl std::fmt::Debug for Espeak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Espeak").field("voice", &self.voice).field("mode", &self.mode).finish()
    }
}

impl Espeak {
    /// Starts espeak-ng (`program`, normally `espeak-ng` on `PATH`) for `voice` and learns the
    /// sentinel's phonemes. Fails with `Phonemizer` when the program is missing or rejects the
    /// voice, so a misconfigured machine is found at start-up, not on the first call.
    pub fn new(program: &Path, voice: &str, mode: EspeakMode, timeout: Duration) -> Result<Self, SpeechError> {
        if voice.is_empty() || voice.starts_with('-') || voice.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(SpeechError::Phonemizer(format!("invalid espeak-ng voice {voice:?}")));
        }
        let mut espeak = Espeak {
            program: program.to_path_buf(),
            voice: voice.to_owned(),
            mode,
            timeout,
            sentinel_ipa: String::new(),
            process: None,
        };
        let mut process = espeak.spawn()?;
        process.write_lines(&[SENTINEL])?;
        let line = process.read_line(timeout)?;
        let sentinel_ipa = line.map(|l| l.trim().to_owned()).unwrap_or_default();
        if sentinel_ipa.is_empty() {
            let stderr = process.finish_stderr();
            return Err(SpeechError::Phonemizer(format!(
                "{} -v {voice} printed no phonemes{}",
                program.display(),
                stderr.map(|e| format!(": {e}")).unwrap_or_default()
            )));
        }
        espeak.sentinel_ipa = sentinel_ipa;
        if mode == EspeakMode::Persistent {
            espeak.process = Some(process);
        }
        Ok(espeak)
    }

    pub fn voice(&self) -> &str {
        &self.voice
    }

    /// IPA for each clause (one string per clause, in order; the lines espeak-ng prints for
    /// one clause are joined with a space). A clause with nothing to say gives "".
    pub fn phonemize(&mut self, clauses: &[&str]) -> Result<Vec<String>, SpeechError> {
        let result = self.phonemize_once(clauses);
        if result.is_err() {
            // A dead, hung or out-of-step process is replaced on the next request.
            self.process = None;
        }
        result
    }

    fn phonemize_once(&mut self, clauses: &[&str]) -> Result<Vec<String>, SpeechError> {
        // Each clause becomes one or more lines, each line followed by the sentinel.
        let pieces: Vec<Vec<String>> = clauses.iter().map(|c| line_pieces(&sanitize(c))).collect();
        let mut lines: Vec<&str> = Vec::new();
        for piece in pieces.iter().flatten() {
            lines.push(piece);
            lines.push(SENTINEL);
        }
        let mut owned_process;
        let process = match self.mode {
            EspeakMode::Persistent => {
                if self.process.is_none() {
                    self.process = Some(self.spawn()?);
                }
                self.process.as_mut().ok_or_else(|| SpeechError::Phonemizer("espeak-ng did not start".into()))?
            }
            EspeakMode::PerCall => {
                owned_process = self.spawn()?;
                &mut owned_process
            }
        };
        process.write_lines(&lines)?;
        if self.mode == EspeakMode::PerCall {
            process.close_stdin();
        }
        let deadline = Instant::now() + self.timeout;
        let mut out = Vec::with_capacity(clauses.len());
        for clause_pieces in &pieces {
            let mut ipa: Vec<String> = Vec::new();
            for _ in clause_pieces {
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let line = process.read_line(left)?.ok_or_else(|| {
                        SpeechError::Phonemizer(format!(
                            "espeak-ng exited before answering{}",
                            process.finish_stderr().map(|e| format!(": {e}")).unwrap_or_default()
                        ))
                    })?;
                    let line = line.trim();
                    if line == self.sentinel_ipa {
                        break;
                    }
                    if !line.is_empty() {
                        ipa.push(line.to_owned());
                    }
                }
            }
            out.push(ipa.join(" "));
        }
        Ok(out)
    }

    fn spawn(&self) -> Result<EspeakProcess, SpeechError> {
        EspeakProcess::spawn(&self.program, &self.voice)
    }
}

/// What a clause line may not contain: line breaks and control characters (they would split
/// the request), and `[[` (espeak-ng reads `[[...]]` as raw phoneme input).
fn sanitize(clause: &str) -> String {
    let cleaned: String = clause.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let mut cleaned = cleaned.replace("[[", "[ [").replace("]]", "] ]");
    cleaned = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    cleaned
}

/// Splits a clause into lines of at most `MAX_LINE_BYTES`, at spaces where possible.
fn line_pieces(clause: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for word in clause.split(' ') {
        let mut word = word;
        while word.len() > MAX_LINE_BYTES {
            let mut cut = MAX_LINE_BYTES;
            while !word.is_char_boundary(cut) {
                cut -= 1;
            }
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            out.push(word[..cut].to_owned());
            word = &word[cut..];
        }
        if !current.is_empty() && current.len() + 1 + word.len() > MAX_LINE_BYTES {
            out.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() || out.is_empty() {
        out.push(current);
    }
    out
}

/// One running `espeak-ng`, its stdin, and a thread forwarding its stdout lines (so reads can
/// time out instead of hanging a worker on a stuck process).
struct EspeakProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<std::io::Result<String>>,
}

impl EspeakProcess {
    fn spawn(program: &Path, voice: &str) -> Result<Self, SpeechError> {
        let mut child = Command::new(program)
            .args(["-q", "--ipa", "-v", voice])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    SpeechError::Phonemizer(format!("{} not found: {INSTALL_HINT}", program.display()))
                }
                _ => SpeechError::Phonemizer(format!("starting {}: {e}", program.display())),
            })?;
        let stdout = child.stdout.take().ok_or_else(|| SpeechError::Phonemizer("espeak-ng has no stdout".into()))?;
        // Bounded: espeak-ng prints one line per clause and the worker reads them all before
        // writing the next request, so a few lines of slack are enough.
        let (tx, lines) = sync_channel(256);
        std::thread::Builder::new()
            .name("espeak-ng-reader".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let failed = line.is_err();
                    if tx.send(line).is_err() || failed {
                        break;
                    }
                }
            })
            .map_err(|e| SpeechError::Phonemizer(format!("starting the espeak-ng reader thread: {e}")))?;
        let stdin = child.stdin.take();
        Ok(EspeakProcess { child, stdin, lines })
    }

    fn write_lines(&mut self, lines: &[&str]) -> Result<(), SpeechError> {
        let stdin = self.stdin.as_mut().ok_or_else(|| SpeechError::Phonemizer("espeak-ng stdin is closed".into()))?;
        let mut buf = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for line in lines {
            buf.push_str(line);
            buf.push('\n');
        }
        stdin
            .write_all(buf.as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|e| SpeechError::Phonemizer(format!("writing to espeak-ng: {e}")))
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The next stdout line; `None` when espeak-ng closed its output (it exited).
    fn read_line(&mut self, timeout: Duration) -> Result<Option<String>, SpeechError> {
        match self.lines.recv_timeout(timeout) {
            Ok(Ok(line)) => Ok(Some(line)),
            Ok(Err(e)) => Err(SpeechError::Phonemizer(format!("reading espeak-ng output: {e}"))),
            Err(RecvTimeoutError::Disconnected) => Ok(None),
            Err(RecvTimeoutError::Timeout) => {
                Err(SpeechError::Phonemizer(format!("espeak-ng did not answer within {timeout:?}")))
            }
        }
    }

    /// What espeak-ng said on stderr, once it has exited (or been killed).
    fn finish_stderr(&mut self) -> Option<String> {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut text = String::new();
        self.child.stderr.take()?.take(4096).read_to_string(&mut text).ok()?;
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_owned())
    }
}

impl Drop for EspeakProcess {
    fn drop(&mut self) {
        // Closing stdin ends espeak-ng; kill covers a process stuck mid-clause.
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The phoneme sequence of one sentence from its clauses' IPA and terminators, as Piper's
/// phonemizer builds it: flags removed, NFD-decomposed, punctuation put back.
pub fn assemble(clauses: &[(String, Option<char>)]) -> Vec<char> {
    let mut out = Vec::new();
    for (ipa, terminator) in clauses {
        let mut in_flag = false;
        for c in ipa.nfd() {
            match c {
                '(' => in_flag = true,
                ')' if in_flag => in_flag = false,
                _ if in_flag => {}
                _ => out.push(c),
            }
        }
        // Trailing spaces of a clause would double the one added after `,` `:` `;`.
        while out.last() == Some(&' ') {
            out.pop();
        }
        if let Some(t) = terminator {
            out.push(*t);
            if matches!(t, ',' | ':' | ';') {
                out.push(' ');
            }
        }
    }
    while out.last() == Some(&' ') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses_get_their_punctuation_back() {
        let got: String = assemble(&[("həlˈoʊ".into(), Some(',')), ("wˈɜːld".into(), Some('.'))]).into_iter().collect();
        assert_eq!(got, "həlˈoʊ, wˈɜːld.");
        let got: String =
            assemble(&[("a".into(), Some(':')), ("b".into(), Some(';')), ("c".into(), None)]).into_iter().collect();
        assert_eq!(got, "a: b; c");
    }

    #[test]
    fn language_flags_are_removed_and_ipa_is_decomposed() {
        let got = assemble(&[("(fr)bɔ̃ʒuʁ(en) ç".into(), Some('?'))]);
        // "ç" is precomposed U+00E7 in the input and comes out as c + U+0327.
        assert_eq!(got, vec!['b', 'ɔ', '\u{303}', 'ʒ', 'u', 'ʁ', ' ', 'c', '\u{327}', '?']);
    }

    #[test]
    fn clause_lines_are_sanitized_and_cut() {
        assert_eq!(sanitize("a\nb\r[[h@l'oU]]\tc"), "a b [ [h@l'oU] ] c");
        let long = "word ".repeat(400);
        let pieces = line_pieces(&sanitize(&long));
        assert!(pieces.len() >= 2);
        assert!(pieces.iter().all(|p| p.len() <= MAX_LINE_BYTES && !p.starts_with(' ')));
        assert_eq!(pieces.join(" "), sanitize(&long));
        let unbroken = "é".repeat(600);
        let pieces = line_pieces(&unbroken);
        assert!(pieces.iter().all(|p| p.len() <= MAX_LINE_BYTES));
        assert_eq!(pieces.concat(), unbroken);
    }
}
