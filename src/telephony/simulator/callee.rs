//! The simulator carrier's virtual callees: a number in `persona::NUMBERS` "rings", and unless
//! its persona never answers or is busy, a callee picks up by opening a real WebSocket to our
//! own `/twilio/stream` as Twilio would, and talks. It speaks with the same TTS the bot uses
//! (8 kHz µ-law, 20 ms chunks) and it listens: when a line of the bot's has ended (its `mark`
//! came back, see `ear`), the callee transcribes it with the node's STT and answers what was
//! asked (`persona`). It never starts a reply while the bot is talking; only the personas
//! that talk over a line on purpose do.
//!
//! | number | persona | outcome with the sales template |
//! |---|---|---|
//! | +15550100001 | agrees: "Yes, speaking." to who it is, "Yes, I am interested." to the offer | successful |
//! | +15550100002 | declines: confirms who it is only when asked, "No, I am not interested." to any offer | rejected |
//! | +15550100003 | "Stop calling me. Please remove me from your list." to the first question | optedOut |
//! | +15550100004 | asks to be called back tomorrow at 3 pm; asked when, "Tomorrow at 3 pm." | callbackRequested |
//! | +15550100005 | "Sorry, who is this?" a second into the bot's first line, then agrees | successful |
//! | +15550100006 | voicemail: a greeting, then a beep | voicemail |
//! | +15550100007 | never answers | noAnswer |
//! | +15550100008 | busy | busy |
//! | +15550100009 | agrees with a 700 ms pause inside: "Yes, sure," ... "go ahead." | successful |
//! | +15550100010 | "Uh-huh." 1.5 s into the bot's first line that long (not a turn), then agrees | successful |
//! | +15550100011 | "Can I speak to a real person?" to the offer; asked again, "No, thank you. Goodbye." | rejected |
//!
//! After the bot's goodbye a callee says nothing, and hangs up if the bot has not within a
//! few seconds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::ear::{self, Ear, EarConfig, HeardLine};
use super::hearing::{self, HearingError};
use super::peer::{self, PeerCommand, PeerError, PeerEvent, PeerHandle, StreamStart};
pub use super::persona::Persona;
use super::persona::{Conversation, Decision, Part, Reply, TalkOver, Utterance};
use crate::app::AppState;
use crate::media::decode::resample_clip;
use crate::media::{g711, pcm};
use crate::session::legs::{self, Leg, Via};
use crate::speech::SpeechError;
use crate::speech::engine::SpeechEngine;
use crate::store::StoreError;
use crate::store::calls::Call;
use crate::telephony::carrier::CarrierStatus;
use crate::telephony::twilio::stream::{CHUNK_SAMPLES, MULAW_SILENCE};

/// Rings before a simulated callee answers.
const RING: Duration = Duration::from_millis(800);
/// How long an unanswered simulated call rings before the carrier reports no-answer.
const NO_ANSWER_AFTER: Duration = Duration::from_secs(4);
/// A simulated call never lasts longer than this.
const MAX_CALL: Duration = Duration::from_secs(180);
/// After the bot's goodbye, how long the callee waits for the bot to hang up before it does.
const HANG_UP_AFTER_GOODBYE: Duration = Duration::from_secs(5);
/// Waiting for a busy speech pool: attempts, and the pause between them.
const BUSY_RETRIES: u32 = 100;
const BUSY_RETRY_PAUSE: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum CalleeError {
    #[error("speech: {0}")]
    Speech(#[from] SpeechError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Peer(#[from] PeerError),
    #[error("the call has no leg to answer")]
    Refused,
}

/// Rings the persona's number; answers (or not) as the persona does.
pub fn dial(state: AppState, call: Call, persona: Persona) {
    tokio::spawn(async move {
        let id = call.id.clone();
        if let Err(error) = ring_and_talk(&state, &call, persona).await {
            tracing::warn!(call = %id, %error, "simulated call ended early");
            let reason = error.to_string();
            let _ = legs::report_status(
                &state,
                Via::SIMULATOR,
                Leg::Call(&call.id),
                None,
                CarrierStatus::Failed { reason },
            )
            .await;
        }
    });
}

async fn ring_and_talk(state: &AppState, call: &Call, persona: Persona) -> Result<(), CalleeError> {
    match persona {
        Persona::Busy => {
            tokio::time::sleep(RING / 2).await;
            return Ok(
                legs::report_status(state, Via::SIMULATOR, Leg::Call(&call.id), None, CarrierStatus::Busy).await?
            );
        }
        Persona::NeverAnswers => {
            tokio::time::sleep(NO_ANSWER_AFTER).await;
            return Ok(
                legs::report_status(state, Via::SIMULATOR, Leg::Call(&call.id), None, CarrierStatus::NoAnswer).await?
            );
        }
        _ => {}
    }
    let ((), ready) = tokio::join!(tokio::time::sleep(RING), get_ready(state, persona));
    let Ready { engine, opening, talk_over } = ready?;
    let handle = open_stream(state, call).await?;
    let _ = handle.commands.send(PeerCommand::Speak(opening)).await;
    if persona == Persona::Voicemail {
        let _ = handle.commands.send(PeerCommand::Speak(beep_tone())).await;
    }
    Callee::new(persona, engine, handle, talk_over).talk().await;
    Ok(())
}

/// What a callee has ready as it picks up.
struct Ready {
    engine: Arc<SpeechEngine>,
    opening: Vec<u8>,
    talk_over: Option<(TalkOver, Vec<u8>)>,
}

/// Synthesized while the phone rings. A phone says its hello as it picks up: made after the
/// stream opened, it could come after the bot's greeting had started, over it. What the
/// persona says over the bot is made now too: said late, it would not be over the bot.
async fn get_ready(state: &AppState, persona: Persona) -> Result<Ready, CalleeError> {
    let engine = state.calls.speech().await?;
    let opening = speech(&engine, persona.opening()).await?;
    let talk_over = match persona.talk_over() {
        Some(talk_over) => Some((talk_over, speech(&engine, talk_over.says).await?)),
        None => None,
    };
    prewarm(&engine, persona);
    Ok(Ready { engine, opening, talk_over })
}

/// Picks up: opens the call's media stream as Twilio would.
async fn open_stream(state: &AppState, call: &Call) -> Result<PeerHandle, CalleeError> {
    let Some(grant) = legs::outbound_answered(state, Via::SIMULATOR, &call.id).await? else {
        return Err(CalleeError::Refused);
    };
    let token = grant.token;
    // The simulator is on this node: it dials the loopback address, not the public URL.
    let start = StreamStart {
        url: format!("ws://{}/twilio/stream", state.config.listen),
        account_sid: "ACsimulator".into(),
        call_sid: format!("CA{}", call.id),
        stream_sid: format!("MZ{}", call.id),
        custom_parameters: BTreeMap::from([("callId".to_owned(), call.id.to_string()), ("token".to_owned(), token)]),
    };
    Ok(peer::connect(start).await?)
}

/// Synthesizes what the persona may say into the TTS cache while the phone rings and the
/// bot's first line plays (not when the callee must transcribe that line), so that a reply
/// costs no synthesis when it is due. Best effort: a full queue only means a
/// later reply is synthesized when said.
fn prewarm(engine: &SpeechEngine, persona: Persona) {
    let texts: Vec<&str> = persona.repertoire().iter().flat_map(Utterance::words).collect();
    if let Err(error) = engine.tts.prewarm(None, &texts) {
        tracing::debug!(%error, "the callee's lines were not prewarmed");
    }
}

/// Work done off the callee's loop, reported back to it.
enum Thought {
    /// A stretch of the bot's speech, transcribed; `turn` is the callee's turn it belongs to.
    Transcribed { turn: u64, text: Result<String, Arc<HearingError>> },
    /// A reply decided at `cut`, synthesized.
    Reply { decision: Decision, cut: std::time::Instant, audio: Result<Vec<u8>, CalleeError> },
}

/// One callee on one call: listens to the bot, answers what it was asked.
struct Callee {
    persona: Persona,
    engine: Arc<SpeechEngine>,
    peer: PeerHandle,
    /// Transcriptions and syntheses under way; dropped with the callee (a clip still queued
    /// for the STT is then skipped).
    thinking: JoinSet<Thought>,
    conversation: Conversation,
    ear: Ear,
    /// What the bot said since the callee's last turn, as far as transcribed.
    bot_said: String,
    /// The bot's speech cut but not yet transcribed (one transcription runs at a time, so
    /// the text stays in order).
    untranscribed: Vec<u8>,
    transcribing: bool,
    /// When the last stretch of the bot's speech was cut.
    last_cut: Option<std::time::Instant>,
    /// Counts the callee's turns; a transcript of what was said before the current turn is
    /// already answered.
    turn: u64,
    /// What it will say over a line of the bot's, until said.
    talk_over: Option<(TalkOver, Vec<u8>)>,
    hang_up_at: Instant,
}

impl Callee {
    fn new(
        persona: Persona,
        engine: Arc<SpeechEngine>,
        peer: PeerHandle,
        talk_over: Option<(TalkOver, Vec<u8>)>,
    ) -> Self {
        Callee {
            persona,
            engine,
            peer,
            thinking: JoinSet::new(),
            conversation: Conversation::new(persona),
            ear: Ear::new(EarConfig::default()),
            bot_said: String::new(),
            untranscribed: Vec::new(),
            transcribing: false,
            last_cut: None,
            turn: 0,
            talk_over,
            hang_up_at: Instant::now() + MAX_CALL,
        }
    }

    /// Runs until the stream closes or the callee hangs up.
    async fn talk(mut self) {
        loop {
            tokio::select! {
                event = self.peer.events.recv() => match event {
                    None | Some(PeerEvent::Closed) => return,
                    Some(event) => self.on_peer(event).await,
                },
                Some(done) = self.thinking.join_next() => match done {
                    Ok(thought) => self.on_thought(thought).await,
                    Err(error) => {
                        // A bug, not a condition: keep listening rather than stay deaf.
                        tracing::error!(%error, "a callee task failed");
                        self.transcribing = false;
                    }
                },
                _ = tokio::time::sleep_until(self.hang_up_at) => {
                    let _ = self.peer.commands.send(PeerCommand::HangUp).await;
                    return;
                }
            }
        }
    }

    async fn on_peer(&mut self, event: PeerEvent) {
        match event {
            PeerEvent::Heard { frame, audible, at } => {
                self.ear.hear(&frame, audible, at.into_std());
                self.maybe_talk_over().await;
                if let Some(line) = self.ear.line_ended(at.into_std()) {
                    self.heard_line(line);
                }
            }
            PeerEvent::Mark { at, .. } | PeerEvent::Cleared { at } => self.ear.mark(at.into_std()),
            _ => {}
        }
    }

    async fn on_thought(&mut self, thought: Thought) {
        match thought {
            Thought::Transcribed { turn, text } => {
                self.transcribing = false;
                match text {
                    Ok(text) if turn == self.turn => {
                        self.bot_said.push(' ');
                        self.bot_said.push_str(text.trim());
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "the callee could not transcribe the bot"),
                }
                if self.untranscribed.is_empty() {
                    self.decide();
                } else {
                    self.transcribe_next();
                }
            }
            Thought::Reply { decision, cut, audio } => {
                // The bot went on talking after the line this answers: the reply is moot,
                // and what the bot says now is answered when it ends.
                if self.ear.voiced_since(cut) {
                    tracing::debug!(?decision, "the bot went on talking; reply dropped");
                    return;
                }
                match audio {
                    Ok(audio) => {
                        self.conversation.spoke(decision);
                        self.take_turn(audio).await;
                    }
                    Err(error) => tracing::warn!(%error, "the callee could not synthesize its reply"),
                }
            }
        }
    }

    /// Says `audio` as a turn: what the bot said before is answered by it.
    async fn take_turn(&mut self, audio: Vec<u8>) {
        self.turn += 1;
        self.bot_said.clear();
        self.untranscribed.clear();
        self.ear.forget();
        let _ = self.peer.commands.send(PeerCommand::Speak(audio)).await;
    }

    /// A persona that talks over the bot does it once, that far into a line.
    async fn maybe_talk_over(&mut self) {
        if self.talk_over.as_ref().is_none_or(|(t, _)| self.ear.line_voiced() < t.after) {
            return;
        }
        let Some((talk_over, audio)) = self.talk_over.take() else { return };
        if talk_over.backchannel {
            let _ = self.peer.commands.send(PeerCommand::Speak(audio)).await;
        } else {
            self.take_turn(audio).await;
        }
    }

    fn heard_line(&mut self, line: HeardLine) {
        // A machine answers nothing: its STT time is better left to the calls that need it.
        if !self.persona.replies() {
            return;
        }
        self.last_cut = Some(line.at);
        self.untranscribed.extend_from_slice(&line.mulaw);
        if !self.transcribing {
            self.transcribe_next();
        }
    }

    fn transcribe_next(&mut self) {
        let audio = std::mem::take(&mut self.untranscribed);
        self.transcribing = true;
        let (engine, turn) = (self.engine.clone(), self.turn);
        self.thinking
            .spawn(async move { Thought::Transcribed { turn, text: hearing::transcribe(&engine, audio).await } });
    }

    /// Everything the bot said up to the last cut is transcribed: answer it, unless the bot
    /// has gone on talking since (then its next line's end decides).
    fn decide(&mut self) {
        let Some(cut) = self.last_cut else { return };
        if self.ear.voiced_since(cut) {
            return;
        }
        let decision = self.conversation.respond(&self.bot_said);
        tracing::debug!(persona = ?self.persona, bot_said = %self.bot_said.trim(), ?decision, "callee decided");
        match decision.reply {
            Reply::Silent => {}
            Reply::Goodbye => self.hang_up_at = self.hang_up_at.min(Instant::now() + HANG_UP_AFTER_GOODBYE),
            Reply::Say(utterance) => {
                let engine = self.engine.clone();
                self.thinking
                    .spawn(async move { Thought::Reply { decision, cut, audio: speech(&engine, utterance).await } });
            }
        }
    }
}

/// An utterance as the µ-law a phone would send: its parts synthesized, pauses as silence.
async fn speech(engine: &SpeechEngine, utterance: Utterance) -> Result<Vec<u8>, CalleeError> {
    let parts = utterance.0;
    let mut out = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        match part {
            Part::Words(text) => {
                let mut audio = synthesize(engine, text).await?;
                // Cut the voice's own silence next to a pause, so the pause is as long as
                // the persona says; the outer edges sound as the voice makes them.
                let before_pause = matches!(parts.get(i + 1), Some(Part::Pause(_)));
                let after_pause = i > 0 && matches!(parts.get(i - 1), Some(Part::Pause(_)));
                trim_quiet_edges(&mut audio, after_pause, before_pause);
                out.extend(audio);
            }
            Part::Pause(pause) => {
                let samples = (pause.as_millis() as usize) * 8;
                out.extend(std::iter::repeat_n(MULAW_SILENCE, samples));
            }
        }
    }
    Ok(out)
}

/// One text as µ-law; the callee shares the TTS pool with the gateway, so a busy pool is
/// waited for.
async fn synthesize(engine: &SpeechEngine, text: &str) -> Result<Vec<u8>, CalleeError> {
    let mut attempts = 0;
    loop {
        match engine.tts.synthesize(None, text).await {
            Ok(synthesis) => return Ok(to_mulaw(&synthesis.samples, synthesis.sample_rate)),
            Err(SpeechError::Overloaded(_)) if attempts < BUSY_RETRIES => {
                attempts += 1;
                tokio::time::sleep(BUSY_RETRY_PAUSE).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// TTS output (`rate` Hz PCM) as 8 kHz µ-law, the way a phone would send it.
pub fn to_mulaw(samples: &[i16], rate: u32) -> Vec<u8> {
    let mut floats = vec![0f32; samples.len()];
    pcm::i16_to_f32(samples, &mut floats);
    let at_8k = resample_clip(&floats, rate, 8000).unwrap_or_default();
    let mut pcm16 = vec![0i16; at_8k.len()];
    pcm::f32_to_i16(&at_8k, &mut pcm16);
    let mut out = vec![0u8; pcm16.len()];
    g711::encode_ulaw(&pcm16, &mut out);
    out
}

/// Cuts whole 20 ms frames quieter than speech (-40 dBFS) from the start and/or the end of
/// `mulaw`.
fn trim_quiet_edges(mulaw: &mut Vec<u8>, start: bool, end: bool) {
    let loud: Vec<bool> = mulaw.chunks(CHUNK_SAMPLES).map(|frame| ear::rms(frame) >= ear::VOICED_RMS).collect();
    let (Some(first), Some(last)) = (loud.iter().position(|&l| l), loud.iter().rposition(|&l| l)) else {
        return;
    };
    if end {
        mulaw.truncate(((last + 1) * CHUNK_SAMPLES).min(mulaw.len()));
    }
    if start {
        mulaw.drain(..first * CHUNK_SAMPLES);
    }
}

/// An answering machine's beep: 1 kHz for half a second, after a short pause.
fn beep_tone() -> Vec<u8> {
    let mut pcm16 = vec![0i16; 8000 * 3 / 10];
    pcm16.extend((0..4000).map(|n| (12000.0 * (2.0 * std::f32::consts::PI * 1000.0 * n as f32 / 8000.0).sin()) as i16));
    let mut out = vec![0u8; pcm16.len()];
    g711::encode_ulaw(&pcm16, &mut out);
    out
}

/// The simulator as a `Carrier`: its numbers ring a persona on this node.
#[derive(Debug, Default, Clone, Copy)]
pub struct SimulatorCarrier;

impl SimulatorCarrier {
    pub fn reaches(phone: &str) -> bool {
        Persona::for_number(phone).is_some()
    }
}

impl crate::telephony::carrier::Carrier for SimulatorCarrier {
    fn name(&self) -> &'static str {
        "simulator"
    }

    fn place<'a>(
        &'a self,
        state: &'a AppState,
        call: &'a Call,
    ) -> futures::future::BoxFuture<'a, Result<Option<String>, crate::telephony::carrier::CarrierError>> {
        Box::pin(async move {
            let persona = Persona::for_number(&call.phone).ok_or_else(|| {
                crate::telephony::carrier::CarrierError(format!("{} is not a simulator number", call.phone))
            })?;
            dial(state.clone(), call.clone(), persona);
            Ok(Some(format!("CA{}", call.id)))
        })
    }

    /// Nothing to tell: a connected callee hears its stream close, and one still ringing
    /// finds its stream refused when it picks up.
    fn hang_up<'a>(
        &'a self,
        _carrier_call_id: &'a str,
        _answered: bool,
    ) -> futures::future::BoxFuture<'a, Result<(), crate::telephony::carrier::CarrierError>> {
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(frames: usize, level: i16) -> Vec<u8> {
        let pcm16: Vec<i16> = (0..frames * CHUNK_SAMPLES).map(|i| if i % 16 < 8 { level } else { -level }).collect();
        let mut out = vec![0u8; pcm16.len()];
        g711::encode_ulaw(&pcm16, &mut out);
        out
    }

    #[test]
    fn quiet_edges_are_cut_only_where_asked() {
        let clip =
            [vec![MULAW_SILENCE; 3 * CHUNK_SAMPLES], tone(5, 8000), vec![MULAW_SILENCE; 4 * CHUNK_SAMPLES]].concat();
        let mut both = clip.clone();
        trim_quiet_edges(&mut both, true, true);
        assert_eq!(both, tone(5, 8000));
        let mut end_only = clip.clone();
        trim_quiet_edges(&mut end_only, false, true);
        assert_eq!(end_only.len(), 8 * CHUNK_SAMPLES);
        let mut silent = vec![MULAW_SILENCE; 4 * CHUNK_SAMPLES];
        trim_quiet_edges(&mut silent, true, true);
        assert_eq!(silent.len(), 4 * CHUNK_SAMPLES, "nothing loud: left alone");
    }
}
