//! Life-cycle enums of calls and campaigns, with their wire spelling.

use serde::{Deserialize, Serialize};

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s { $($wire => Some($name::$variant),)+ _ => None }
            }

            /// The accepted spellings, for error messages.
            pub fn expected() -> String {
                [$($wire),+].join(", ")
            }
        }

        // By hand: utoipa's derive does not see serde renames written through macro fragments.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($wire),+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// Where a call is in its life. `scheduled` waits for its time, `queued` waits for a line.
    CallStatus {
        Scheduled = "scheduled",
        Queued = "queued",
        Ringing = "ringing",
        InProgress = "in-progress",
        Completed = "completed",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

impl CallStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, CallStatus::Completed | CallStatus::Failed | CallStatus::Cancelled)
    }

    /// A call can be cancelled until the carrier has been asked to ring it.
    pub fn is_cancellable(self) -> bool {
        matches!(self, CallStatus::Scheduled | CallStatus::Queued)
    }
}

wire_enum! {
    /// How a finished call went; the keys of `callsByOutcome` in analytics.
    Outcome {
        Successful = "successful",
        Unsuccessful = "unsuccessful",
        NoAnswer = "noAnswer",
        Busy = "busy",
        Voicemail = "voicemail",
        Rejected = "rejected",
        CallbackRequested = "callbackRequested",
        OptedOut = "optedOut",
        Failed = "failed",
    }
}

wire_enum! {
    CallDirection {
        Outbound = "outbound",
        Inbound = "inbound",
    }
}

wire_enum! {
    /// Which carrier places and receives an inbound number's calls: the embedded simulator
    /// (no carrier account needed) or Twilio.
    CarrierKind {
        Simulator = "simulator",
        Twilio = "twilio",
        Sip = "sip",
    }
}

wire_enum! {
    CampaignStatus {
        Scheduled = "scheduled",
        Active = "active",
        Paused = "paused",
        Completed = "completed",
        Cancelled = "cancelled",
    }
}

impl CampaignStatus {
    /// The legal transitions: scheduled -> active/paused/cancelled,
    /// active -> paused/completed/cancelled, paused -> active/cancelled.
    pub fn can_become(self, next: CampaignStatus) -> bool {
        use CampaignStatus::*;
        matches!(
            (self, next),
            (Scheduled, Active | Paused | Cancelled)
                | (Active, Paused | Completed | Cancelled)
                | (Paused, Active | Cancelled)
        )
    }

    /// The past participle used in "Campaign successfully ...".
    pub fn verb(self) -> &'static str {
        match self {
            CampaignStatus::Scheduled => "scheduled",
            CampaignStatus::Active => "activated",
            CampaignStatus::Paused => "paused",
            CampaignStatus::Completed => "completed",
            CampaignStatus::Cancelled => "cancelled",
        }
    }

    /// Campaigns in these states may still place calls.
    pub fn is_live(self) -> bool {
        matches!(self, CampaignStatus::Scheduled | CampaignStatus::Active | CampaignStatus::Paused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaign_transitions_are_exactly_the_legal_ones() {
        use CampaignStatus::*;
        let legal = [
            (Scheduled, Active),
            (Scheduled, Paused),
            (Scheduled, Cancelled),
            (Active, Paused),
            (Active, Completed),
            (Active, Cancelled),
            (Paused, Active),
            (Paused, Cancelled),
        ];
        for &from in CampaignStatus::ALL {
            for &to in CampaignStatus::ALL {
                assert_eq!(from.can_become(to), legal.contains(&(from, to)), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn wire_spelling_round_trips() {
        for s in CallStatus::ALL {
            assert_eq!(CallStatus::parse(s.as_str()), Some(*s));
        }
        assert_eq!(CallStatus::InProgress.as_str(), "in-progress");
        assert_eq!(Outcome::NoAnswer.as_str(), "noAnswer");
    }
}
