//! The simulator carrier's virtual callees: a number in +15550100001..8 "rings", and unless
//! its persona never answers or is busy, a callee picks up by opening a real WebSocket to our
//! own `/twilio/stream` as Twilio would, and talks: its lines are synthesized with the same
//! TTS the bot uses, sent as µ-law in 20 ms chunks, and timed by listening to the bot (a reply
//! follows 600 ms after the bot stops talking).
//!
//! | number | persona |
//! |---|---|
//! | +15550100001 | agrees |
//! | +15550100002 | declines |
//! | +15550100003 | asks not to be called again |
//! | +15550100004 | asks for a callback tomorrow at 3 pm |
//! | +15550100005 | interrupts the bot's first line, then agrees |
//! | +15550100006 | voicemail: a greeting, then a beep |
//! | +15550100007 | never answers |
//! | +15550100008 | busy |

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::peer::{self, PeerCommand, PeerEvent, StreamStart};
use crate::app::AppState;
use crate::media::decode::resample_clip;
use crate::media::g711;
use crate::session::dispatcher;
use crate::store::calls::Call;
use crate::telephony::carrier::CarrierStatus;
use crate::telephony::twilio::http::stream_parameters;

/// Rings before a simulated callee answers.
const RING: Duration = Duration::from_millis(800);
/// How long an unanswered simulated call rings before the carrier reports no-answer.
const NO_ANSWER_AFTER: Duration = Duration::from_secs(4);
/// Quiet after the bot's audio that counts as "the bot finished its line".
const REPLY_AFTER_SILENCE: Duration = Duration::from_millis(600);
/// A simulated call never lasts longer than this.
const MAX_CALL: Duration = Duration::from_secs(180);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persona {
    Agrees,
    Declines,
    OptsOut,
    WantsCallback,
    Interrupts,
    Voicemail,
    NeverAnswers,
    Busy,
}

impl Persona {
    pub fn for_number(phone: &str) -> Option<Persona> {
        Some(match phone {
            "+15550100001" => Persona::Agrees,
            "+15550100002" => Persona::Declines,
            "+15550100003" => Persona::OptsOut,
            "+15550100004" => Persona::WantsCallback,
            "+15550100005" => Persona::Interrupts,
            "+15550100006" => Persona::Voicemail,
            "+15550100007" => Persona::NeverAnswers,
            "+15550100008" => Persona::Busy,
            _ => return None,
        })
    }

    /// What the callee says as soon as it picks up.
    fn opening(self) -> &'static str {
        match self {
            Persona::Voicemail => {
                "Hi, you've reached John Smith. I'm not available to take your call right now. \
                 Please leave a message after the tone."
            }
            _ => "Hello?",
        }
    }

    /// Replies, one each time the bot finishes a line.
    fn replies(self) -> &'static [&'static str] {
        match self {
            Persona::Agrees | Persona::Interrupts => {
                &["Yes, speaking.", "Yes, I am interested.", "Yes, please.", "Yes, that's fine.", "Yes."]
            }
            Persona::Declines => &["Yes, speaking.", "No, I am not interested. Thank you."],
            Persona::OptsOut => &["Stop calling me. Please remove me from your list."],
            Persona::WantsCallback => &["Yes, speaking.", "I'm busy right now. Can you call me back tomorrow at 3 pm?"],
            Persona::Voicemail | Persona::NeverAnswers | Persona::Busy => &[],
        }
    }
}

/// Rings the persona's number; answers (or not) as the persona does.
pub fn dial(state: AppState, call: Call, persona: Persona) {
    tokio::spawn(async move {
        let id = call.id.clone();
        if let Err(reason) = ring_and_talk(&state, &call, persona).await {
            tracing::warn!(call = %id, %reason, "simulated call ended early");
            let _ = dispatcher::end_unanswered(&state, &call, CarrierStatus::Failed { reason }).await;
        }
    });
}

async fn ring_and_talk(state: &AppState, call: &Call, persona: Persona) -> Result<(), String> {
    match persona {
        Persona::Busy => {
            tokio::time::sleep(RING / 2).await;
            return dispatcher::end_unanswered(state, call, CarrierStatus::Busy).await.map_err(|e| e.to_string());
        }
        Persona::NeverAnswers => {
            tokio::time::sleep(NO_ANSWER_AFTER).await;
            return dispatcher::end_unanswered(state, call, CarrierStatus::NoAnswer).await.map_err(|e| e.to_string());
        }
        _ => tokio::time::sleep(RING).await,
    }
    let engine = state.calls.speech().await.map_err(|e| e.to_string())?;
    let (_, token) = stream_parameters(state, &call.id).await.map_err(|e| e.to_string())?;
    // The simulator is on this node: it dials the loopback address, not the public URL.
    let url = format!("ws://{}/twilio/stream", state.config.listen);
    let start = StreamStart {
        url,
        account_sid: "ACsimulator".into(),
        call_sid: format!("CA{}", call.id),
        stream_sid: format!("MZ{}", call.id),
        custom_parameters: BTreeMap::from([("callId".to_owned(), call.id.to_string()), ("token".to_owned(), token)]),
    };
    let mut handle = peer::connect(start).await.map_err(|e| e.to_string())?;
    let say = |text: &str| {
        let engine = engine.clone();
        let text = text.to_owned();
        async move {
            // The callee shares the TTS pool with the gateway; when it is busy, wait.
            let mut attempts = 0;
            loop {
                match engine.tts.synthesize(None, &text).await {
                    Ok(synthesis) => return Ok::<Vec<u8>, String>(to_mulaw(&synthesis.samples, synthesis.sample_rate)),
                    Err(crate::speech::SpeechError::Overloaded(_)) if attempts < 100 => {
                        attempts += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
        }
    };

    let opening = say(persona.opening()).await?;
    let _ = handle.commands.send(PeerCommand::Speak(opening)).await;
    if persona == Persona::Voicemail {
        let _ = handle.commands.send(PeerCommand::Speak(beep_tone())).await;
    }
    let mut replies: VecDeque<&str> = persona.replies().iter().copied().collect();
    let mut interrupted = persona != Persona::Interrupts;
    let mut bot_talking_for = Duration::ZERO;
    let mut quiet_for = Duration::ZERO;
    let mut bot_spoke = false;
    let mut speaking = true;
    let deadline = tokio::time::Instant::now() + MAX_CALL;
    loop {
        let event = tokio::select! {
            event = handle.events.recv() => event,
            _ = tokio::time::sleep_until(deadline) => {
                let _ = handle.commands.send(PeerCommand::HangUp).await;
                return Ok(());
            }
        };
        match event {
            None | Some(PeerEvent::Closed) => return Ok(()),
            Some(PeerEvent::DoneSpeaking { .. }) => speaking = false,
            Some(PeerEvent::Heard { audible, .. }) => {
                if audible {
                    bot_spoke = true;
                    bot_talking_for += Duration::from_millis(20);
                    quiet_for = Duration::ZERO;
                    // Persona 5 talks over the bot a second into its first line.
                    if !interrupted && bot_talking_for >= Duration::from_millis(1000) {
                        interrupted = true;
                        speaking = true;
                        let _ = handle.commands.send(PeerCommand::Speak(say("Sorry, who is this?").await?)).await;
                    }
                    continue;
                }
                quiet_for += Duration::from_millis(20);
                if bot_spoke && !speaking && quiet_for >= REPLY_AFTER_SILENCE {
                    bot_spoke = false;
                    bot_talking_for = Duration::ZERO;
                    if let Some(reply) = replies.pop_front() {
                        speaking = true;
                        let _ = handle.commands.send(PeerCommand::Speak(say(reply).await?)).await;
                    }
                }
            }
            Some(_) => {}
        }
    }
}

/// TTS output (`rate` Hz PCM) as 8 kHz µ-law, the way a phone would send it.
pub fn to_mulaw(samples: &[i16], rate: u32) -> Vec<u8> {
    let floats: Vec<f32> = samples.iter().map(|&s| f32::from(s) / 32768.0).collect();
    let at_8k = resample_clip(&floats, rate, 8000).unwrap_or_default();
    let pcm: Vec<i16> = at_8k.iter().map(|&s| (s * 32767.0).clamp(-32768.0, 32767.0) as i16).collect();
    let mut out = vec![0u8; pcm.len()];
    g711::encode_ulaw(&pcm, &mut out);
    out
}

/// An answering machine's beep: 1 kHz for half a second, after a short pause.
fn beep_tone() -> Vec<u8> {
    let mut pcm = vec![0i16; 8000 * 3 / 10];
    pcm.extend((0..4000).map(|n| (12000.0 * (2.0 * std::f32::consts::PI * 1000.0 * n as f32 / 8000.0).sin()) as i16));
    let mut out = vec![0u8; pcm.len()];
    g711::encode_ulaw(&pcm, &mut out);
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
