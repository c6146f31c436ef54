//! Everything a session needs to know about its call before audio flows: the call, its
//! account, and the template made into a script with the call's variables and the
//! contact's fields.

use crate::app::AppState;
use crate::dialogue::Script;
use crate::domain::Id;
use crate::domain::status::CallDirection;
use crate::store::calls::Call;
use crate::store::{contacts, templates};

#[derive(Clone, Debug)]
pub struct CallSetup {
    pub account_id: Id,
    pub call: Call,
    pub script: Script,
    /// Listen for an answering machine before speaking (outbound calls).
    pub screen_for_machine: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the call has no template")]
    NoTemplate,
    #[error("template {0} no longer exists")]
    TemplateGone(Id),
    #[error("the template cannot be said: {0}")]
    Script(#[from] crate::dialogue::ScriptError),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
}

pub async fn load(state: &AppState, account_id: &Id, call: Call) -> Result<CallSetup, SetupError> {
    let template_id = call.template_id.clone().ok_or(SetupError::NoTemplate)?;
    let template = templates::get(&state.db, account_id, &template_id)
        .await?
        .ok_or_else(|| SetupError::TemplateGone(template_id.clone()))?;
    let contact = match &call.contact_id {
        Some(id) => contacts::get(&state.db, account_id, id).await?,
        None => None,
    };
    // The call's own values first; the contact's fields (as of now) fill the rest.
    let value_of = |name: &str| {
        call.variables.get(name).cloned().or_else(|| contact.as_ref().and_then(|c| c.template_value(name)))
    };
    let script = Script::new(&template.steps, template.voicemail_message.as_deref(), value_of)?;
    Ok(CallSetup {
        account_id: account_id.clone(),
        screen_for_machine: call.direction == CallDirection::Outbound,
        call,
        script,
    })
}

impl CallSetup {
    /// Every line the script may say, in order: its steps, then the voicemail message.
    pub fn lines(&self) -> Vec<&str> {
        let mut lines: Vec<&str> = self.script.steps().iter().map(|s| s.text.as_str()).collect();
        if self.screen_for_machine
            && let Some(message) = self.script.voicemail_message()
        {
            lines.push(message);
        }
        lines
    }
}

/// Synthesizes `lines` into the TTS cache in the background, so that a reply starts within a
/// frame of the dialogue's decision. Lines already cached cost nothing; a failure only means
/// the line is synthesized when said.
pub fn prewarm(engine: &crate::speech::engine::SpeechEngine, call_id: &Id, lines: &[&str]) {
    if lines.is_empty() {
        return;
    }
    if let Err(error) = engine.tts.prewarm(None, lines) {
        tracing::debug!(call = %call_id, %error, "cannot prewarm the call's lines");
    }
}
