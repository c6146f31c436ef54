//! SDP offer/answer (RFC 3264) for a SIP call's audio, sans-IO. Parsing and printing are
//! `ezk-sdp-types`'; the negotiation is ours (no crate has it without its own RTP stack).
//!
//! We speak PCMU, PCMA and Opus with telephone-event (RFC 4733) at 20 ms. Answering, we take
//! the offerer's first audio codec we speak, keep the offerer's payload-type numbers, mirror
//! the direction (their `sendonly` is our `recvonly`: hold), answer every other media line
//! with port 0 (declined), and decline an offer with no audio we speak (SIP answers 488).

use std::net::{IpAddr, SocketAddr};

use bytesstr::BytesStr;
use ezk_sdp_types::{
    Connection, Direction, Fmtp, Media, MediaDescription, MediaType, Origin, RtpMap, SessionDescription, TaggedAddress,
    Time, TransportProtocol, UnknownAttribute,
};

/// The only packet time we send and ask for.
pub const PTIME_MS: u32 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Pcmu,
    Pcma,
    Opus,
}

impl Codec {
    fn encoding(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::Opus => "opus",
        }
    }

    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => 8000,
            Codec::Opus => 48000,
        }
    }

    /// The static payload type (RFC 3551), or the one we offer for Opus.
    fn offered_payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
            Codec::Opus => 111,
        }
    }

    fn from_rtpmap(encoding: &str, clock_rate: u32) -> Option<Codec> {
        let codec = [Codec::Pcmu, Codec::Pcma, Codec::Opus]
            .into_iter()
            .find(|c| c.encoding().eq_ignore_ascii_case(encoding))?;
        (codec.clock_rate() == clock_rate).then_some(codec)
    }
}

/// What both sides agreed for the audio.
#[derive(Debug, Clone, PartialEq)]
pub struct Negotiated {
    pub codec: Codec,
    /// The payload type numbers in use (the offerer's).
    pub audio_pt: u8,
    pub events_pt: Option<u8>,
    pub comfort_noise_pt: Option<u8>,
    /// Where to send RTP; `None` when the peer gave none (`c=0.0.0.0`, the old way to hold).
    pub remote: Option<SocketAddr>,
    /// Our direction: whether we send, receive, both or neither.
    pub direction: Direction,
}

impl Negotiated {
    pub fn sends(&self) -> bool {
        matches!(self.direction, Direction::SendRecv | Direction::SendOnly) && self.remote.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// Not SDP we can read (SIP answers 400).
    #[error("unreadable SDP: {0}")]
    Unreadable(String),
    /// No audio line, or none with a codec we speak (SIP answers 488 Not Acceptable Here).
    #[error("no common audio codec: {0}")]
    NotAcceptable(String),
}

/// Our side of the media: the address and port RTP reaches us at, and the SDP origin's
/// session id and version (the version grows with every new offer or answer we make).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalMedia {
    pub address: IpAddr,
    pub port: u16,
    pub session_id: u64,
    pub version: u64,
}

fn parse(text: &str) -> Result<SessionDescription, SdpError> {
    SessionDescription::parse(&BytesStr::from(text)).map_err(|e| SdpError::Unreadable(e.to_string()))
}

fn ip_of(address: &TaggedAddress) -> Option<IpAddr> {
    match address {
        TaggedAddress::IP4(ip) => Some(IpAddr::V4(*ip)),
        TaggedAddress::IP6(ip) => Some(IpAddr::V6(*ip)),
        // A host name would need DNS on the media path; trunks send addresses.
        TaggedAddress::IP4FQDN(_) | TaggedAddress::IP6FQDN(_) => None,
    }
}

/// Where a media line's RTP goes: its own `c=`, else the session's; `None` for 0.0.0.0.
fn remote_of(session: &SessionDescription, media: &MediaDescription) -> Option<SocketAddr> {
    let connection = media.connection.as_ref().or(session.connection.as_ref())?;
    let ip = ip_of(&connection.address)?;
    (!ip.is_unspecified() && media.media.port != 0).then(|| SocketAddr::new(ip, media.media.port))
}

/// The codec of payload type `pt` in a media line: its rtpmap, else the static assignment.
fn codec_of(media: &MediaDescription, pt: u8) -> Option<(String, u32)> {
    if let Some(map) = media.rtpmap.iter().find(|m| m.payload == pt) {
        return Some((map.encoding.as_str().to_owned(), map.clock_rate));
    }
    match pt {
        0 => Some(("PCMU".into(), 8000)),
        8 => Some(("PCMA".into(), 8000)),
        13 => Some(("CN".into(), 8000)),
        _ => None,
    }
}

/// The payload type of `encoding` at `clock_rate` in a media line, if offered.
fn payload_type_of(media: &MediaDescription, encoding: &str, clock_rate: u32) -> Option<u8> {
    media
        .media
        .fmts
        .iter()
        .copied()
        .find(|&pt| codec_of(media, pt).is_some_and(|(e, rate)| e.eq_ignore_ascii_case(encoding) && rate == clock_rate))
}

/// Reads what a media line agrees to with us: its first codec we speak (in its order).
fn agree(session: &SessionDescription, media: &MediaDescription, speak: &[Codec]) -> Option<Negotiated> {
    let (codec, audio_pt) = media.media.fmts.iter().find_map(|&pt| {
        let (encoding, rate) = codec_of(media, pt)?;
        let codec = Codec::from_rtpmap(&encoding, rate)?;
        speak.contains(&codec).then_some((codec, pt))
    })?;
    // The peer's direction; with no address to send to, we can only receive.
    let remote = remote_of(session, media);
    Some(Negotiated {
        codec,
        audio_pt,
        events_pt: payload_type_of(media, "telephone-event", codec.clock_rate()),
        comfort_noise_pt: payload_type_of(media, "CN", codec.clock_rate()),
        remote,
        direction: if remote.is_none() && media.direction == Direction::SendRecv {
            Direction::RecvOnly
        } else {
            media.direction.flipped()
        },
    })
}

fn audio_description(
    local: &LocalMedia,
    formats: &[(u8, &str, u32, Option<&str>)],
    direction: Direction,
) -> MediaDescription {
    let mut media = MediaDescription::rejected(MediaType::Audio);
    media.media = Media {
        media_type: MediaType::Audio,
        port: local.port,
        ports_num: None,
        proto: TransportProtocol::RtpAvp,
        fmts: formats.iter().map(|f| f.0).collect(),
    };
    media.direction = direction;
    for &(payload, encoding, clock_rate, fmtp) in formats {
        let params = (encoding == "opus").then(|| BytesStr::from("2"));
        media.rtpmap.push(RtpMap { payload, encoding: BytesStr::from(encoding), clock_rate, params });
        if let Some(fmtp) = fmtp {
            media.fmtp.push(Fmtp { format: payload, params: BytesStr::from(fmtp) });
        }
    }
    media.attributes.push(UnknownAttribute { name: "ptime".into(), value: Some(PTIME_MS.to_string().into()) });
    media
}

fn session(local: &LocalMedia, media: Vec<MediaDescription>) -> String {
    let address = TaggedAddress::from(local.address);
    let description = SessionDescription {
        origin: Origin {
            username: "-".into(),
            session_id: local.session_id.to_string().into(),
            session_version: local.version.to_string().into(),
            address: address.clone(),
        },
        name: "callcenter".into(),
        connection: Some(Connection { address, ttl: None, num: None }),
        bandwidth: vec![],
        time: Time { start: 0, stop: 0 },
        direction: Direction::SendRecv,
        group: vec![],
        extmap: vec![],
        extmap_allow_mixed: false,
        ice_lite: false,
        ice_options: Default::default(),
        ice_ufrag: None,
        ice_pwd: None,
        setup: None,
        fingerprint: vec![],
        attributes: vec![],
        media_descriptions: media,
    };
    description.to_string()
}

/// A media line we do not take: port 0, with the offer's formats (a line needs at least one).
fn declined(offered: &MediaDescription) -> MediaDescription {
    let mut line = MediaDescription::rejected(offered.media.media_type);
    line.media.fmts = offered.media.fmts.clone();
    line.media.proto = offered.media.proto.clone();
    line
}

/// Our answer to an offer: what was agreed, and the SDP to send. `speak` lists the codecs we
/// accept (all three normally).
pub fn answer(offer: &str, local: &LocalMedia, speak: &[Codec]) -> Result<(Negotiated, String), SdpError> {
    let offer = parse(offer)?;
    let mut agreed = None;
    let mut lines = Vec::with_capacity(offer.media_descriptions.len());
    for media in &offer.media_descriptions {
        let usable = media.media.media_type == MediaType::Audio
            && media.media.port != 0
            && matches!(media.media.proto, TransportProtocol::RtpAvp | TransportProtocol::RtpAvpf);
        match usable.then(|| agree(&offer, media, speak)).flatten().filter(|_| agreed.is_none()) {
            Some(negotiated) => {
                let mut formats =
                    vec![(negotiated.audio_pt, negotiated.codec.encoding(), negotiated.codec.clock_rate(), None)];
                if let Some(pt) = negotiated.events_pt {
                    formats.push((pt, "telephone-event", negotiated.codec.clock_rate(), Some("0-16")));
                }
                lines.push(audio_description(local, &formats, negotiated.direction));
                agreed = Some(negotiated);
            }
            None => lines.push(declined(media)),
        }
    }
    let negotiated = agreed.ok_or_else(|| {
        let offered: Vec<String> = offer
            .media_descriptions
            .iter()
            .filter(|m| m.media.media_type == MediaType::Audio)
            .flat_map(|m| {
                m.media.fmts.iter().map(|&pt| codec_of(m, pt).map_or(pt.to_string(), |(e, r)| format!("{e}/{r}")))
            })
            .collect();
        SdpError::NotAcceptable(format!(
            "offered {}; we speak PCMU, PCMA and opus",
            if offered.is_empty() { "no audio".into() } else { offered.join(", ") }
        ))
    })?;
    Ok((negotiated, session(local, lines)))
}

/// Our offer for an outbound call: every codec in `speak`, in that order, plus
/// telephone-event at 8 kHz.
pub fn offer(local: &LocalMedia, speak: &[Codec]) -> String {
    let mut formats: Vec<(u8, &str, u32, Option<&str>)> =
        speak.iter().map(|c| (c.offered_payload_type(), c.encoding(), c.clock_rate(), None)).collect();
    formats.push((101, "telephone-event", 8000, Some("0-16")));
    session(local, vec![audio_description(local, &formats, Direction::SendRecv)])
}

/// Reads the peer's answer to our offer (in a 183 or 200, or a re-INVITE's answer).
pub fn read_answer(answer: &str, speak: &[Codec]) -> Result<Negotiated, SdpError> {
    let answer = parse(answer)?;
    answer
        .media_descriptions
        .iter()
        .filter(|m| m.media.media_type == MediaType::Audio && m.media.port != 0)
        .find_map(|m| agree(&answer, m, speak))
        .ok_or_else(|| SdpError::NotAcceptable("the answer accepts none of our audio codecs".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[Codec] = &[Codec::Pcmu, Codec::Pcma, Codec::Opus];

    fn local() -> LocalMedia {
        LocalMedia { address: "192.0.2.10".parse().unwrap(), port: 20_000, session_id: 42, version: 1 }
    }

    /// A typical trunk offer: G.711 both ways, telephone-event at 101, comfort noise.
    const TRUNK_OFFER: &str = "v=0\r\no=FreeSWITCH 1700000000 1700000001 IN IP4 198.51.100.7\r\ns=FreeSWITCH\r\n\
c=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 31000 RTP/AVP 8 0 101 13\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";

    #[test]
    fn a_trunk_offer_gets_its_first_codec_its_numbers_and_dtmf() {
        let (agreed, sdp) = answer(TRUNK_OFFER, &local(), ALL).unwrap();
        assert_eq!(agreed.codec, Codec::Pcma, "the offerer's first choice we speak");
        assert_eq!((agreed.audio_pt, agreed.events_pt, agreed.comfort_noise_pt), (8, Some(101), Some(13)));
        assert_eq!(agreed.remote, Some("198.51.100.7:31000".parse().unwrap()));
        assert_eq!(agreed.direction, Direction::SendRecv);
        assert!(sdp.contains("m=audio 20000 RTP/AVP 8 101\r\n"), "{sdp}");
        assert!(sdp.contains("c=IN IP4 192.0.2.10\r\n"), "{sdp}");
        assert!(sdp.contains("a=rtpmap:101 telephone-event/8000\r\n"), "{sdp}");
        assert!(sdp.contains("a=ptime:20\r\n"), "{sdp}");
        // Our answer is SDP the peer (and we) can read back.
        let back = read_answer(&sdp, ALL).unwrap();
        assert_eq!(
            (back.codec, back.audio_pt, back.remote),
            (Codec::Pcma, 8, Some("192.0.2.10:20000".parse().unwrap()))
        );
    }

    #[test]
    fn dynamic_payload_types_and_opus_are_kept_as_offered() {
        let offer = "v=0\r\no=- 1 1 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 96 97\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:97 telephone-event/48000\r\n";
        let (agreed, sdp) = answer(offer, &local(), ALL).unwrap();
        assert_eq!((agreed.codec, agreed.audio_pt, agreed.events_pt), (Codec::Opus, 96, Some(97)));
        assert!(sdp.contains("a=rtpmap:96 opus/48000/2\r\n"), "{sdp}");
        // Speaking only G.711, the same offer has nothing in common: 488.
        assert!(matches!(answer(offer, &local(), &[Codec::Pcmu]), Err(SdpError::NotAcceptable(_))));
    }

    #[test]
    fn hold_is_mirrored_and_other_media_lines_are_declined_in_place() {
        let offer = "v=0\r\no=- 1 2 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n\
m=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n";
        let (agreed, sdp) = answer(offer, &local(), ALL).unwrap();
        assert_eq!(agreed.direction, Direction::RecvOnly, "they hold us: we only listen");
        assert!(!agreed.sends());
        let video = sdp.find("m=video 0 ").expect("video declined with port 0");
        let audio = sdp.find("m=audio 20000 RTP/AVP 0").expect("audio answered");
        assert!(video < audio, "media lines keep the offer's order: {sdp}");
        assert!(sdp.contains("a=recvonly\r\n"), "{sdp}");
        // The old way to hold: no address at all.
        let old_hold =
            "v=0\r\no=- 1 3 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
        let (agreed, _) = answer(old_hold, &local(), ALL).unwrap();
        assert_eq!((agreed.remote, agreed.direction), (None, Direction::RecvOnly));
        let inactive = offer.replace("a=sendonly", "a=inactive");
        assert_eq!(answer(&inactive, &local(), ALL).unwrap().0.direction, Direction::Inactive);
    }

    #[test]
    fn offers_without_usable_audio_are_refused_with_the_reason() {
        let no_audio = "v=0\r\no=- 1 1 IN IP4 203.0.113.5\r\ns=-\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";
        let Err(SdpError::NotAcceptable(reason)) = answer(no_audio, &local(), ALL) else { panic!("488 expected") };
        assert!(reason.contains("no audio"), "{reason}");
        let g729 = "v=0\r\no=- 1 1 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
        let Err(SdpError::NotAcceptable(reason)) = answer(g729, &local(), ALL) else { panic!("488 expected") };
        assert!(reason.contains("G729/8000"), "{reason}");
        let declined = TRUNK_OFFER.replace("m=audio 31000", "m=audio 0");
        assert!(matches!(answer(&declined, &local(), ALL), Err(SdpError::NotAcceptable(_))));
        let srtp = TRUNK_OFFER.replace("RTP/AVP", "RTP/SAVP");
        assert!(matches!(answer(&srtp, &local(), ALL), Err(SdpError::NotAcceptable(_))));
        for garbage in ["", "hello", "v=0\r\nm=audio x RTP/AVP 0\r\n", "v=0\r\ns=-\r\nt=0 0\r\n"] {
            assert!(matches!(answer(garbage, &local(), ALL), Err(SdpError::Unreadable(_))), "{garbage:?}");
        }
    }

    #[test]
    fn our_offer_lists_our_codecs_and_reads_the_answer() {
        let sdp = offer(&local(), &[Codec::Pcmu, Codec::Pcma]);
        assert!(sdp.contains("m=audio 20000 RTP/AVP 0 8 101\r\n"), "{sdp}");
        assert!(sdp.contains("a=sendrecv\r\n"), "{sdp}");
        assert!(sdp.contains("a=rtpmap:0 PCMU/8000\r\n") && sdp.contains("a=fmtp:101 0-16\r\n"), "{sdp}");
        assert!(sdp.starts_with("v=0\r\no=- 42 1 IN IP4 192.0.2.10\r\n"), "{sdp}");
        let (agreed, reply) = answer(&sdp, &LocalMedia { port: 30_000, ..local() }, ALL).unwrap();
        assert_eq!((agreed.codec, agreed.events_pt), (Codec::Pcmu, Some(101)));
        let back = read_answer(&reply, ALL).unwrap();
        assert_eq!((back.codec, back.remote), (Codec::Pcmu, Some("192.0.2.10:30000".parse().unwrap())));
    }
}
