//! `RtpMedia` against a peer on real UDP sockets: reordered packets come out in order, one
//! frame per 20 ms; our audio goes where the peer's packets come from (symmetric RTP), not
//! where its SDP said; RFC 4733 key presses arrive once; strangers are ignored; a peer that
//! goes silent is detected.

use std::sync::Arc;
use std::time::Duration;

use callcenter::dialogue::LineId;
use callcenter::media::g711;
use callcenter::session::core::{FRAME, Frame};
use callcenter::session::transport::{MediaTransport, TransportEvent};
use callcenter::telephony::sip::dtmf::key_press_packets;
use callcenter::telephony::sip::media::{RtpMedia, RtpMediaConfig};
use callcenter::telephony::sip::rtp::RtpSender;
use callcenter::telephony::sip::sdp::{Codec, Negotiated};
use ezk_sdp_types::Direction;
use rtp_rs::RtpReader;
use tokio::net::UdpSocket;

async fn socket() -> Arc<UdpSocket> {
    Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap())
}

/// What the SDP agreed: PCMU with telephone-event, and an address that is not where the
/// peer's packets will come from (as behind a NAT).
fn negotiated() -> Negotiated {
    Negotiated {
        codec: Codec::Pcmu,
        audio_pt: 0,
        events_pt: Some(101),
        comfort_noise_pt: None,
        remote: Some("127.0.0.1:9".parse().unwrap()),
        direction: Direction::SendRecv,
    }
}

/// A frame of one constant sample value, µ-law encoded: its decoded value tells frames apart.
fn tone(level: i16) -> [u8; FRAME] {
    let mut payload = [0u8; FRAME];
    g711::encode_ulaw(&[level; FRAME], &mut payload);
    payload
}

fn decoded_level(level: i16) -> i16 {
    g711::ulaw_to_linear(g711::linear_to_ulaw(level))
}

/// Events until `count` audio frames that are not silence have come (and what else came).
async fn loud_frames(media: &mut RtpMedia, count: usize) -> (Vec<i16>, Vec<TransportEvent>) {
    let mut levels = Vec::new();
    let mut others = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), async {
        while levels.len() < count {
            match media.next_event().await {
                TransportEvent::Audio(frame) if frame.iter().any(|&s| s != 0) => levels.push(frame[0]),
                TransportEvent::Audio(_) => {}
                other => others.push(other),
            }
        }
    })
    .await
    .expect("the frames come within 5 s");
    (levels, others)
}

#[tokio::test]
async fn reordered_audio_plays_in_order_and_ours_goes_where_the_peer_really_is() {
    let (gateway, peer) = (socket().await, socket().await);
    let mut media = RtpMedia::new(gateway.clone(), &negotiated(), RtpMediaConfig::default()).unwrap();
    let target = gateway.local_addr().unwrap();
    let mut sender = RtpSender::new(7, 100, 0);
    let packets: Vec<Vec<u8>> = (1..=6).map(|k| sender.audio(0, &tone(1000 * k), FRAME as u32)).collect();
    for i in [0, 2, 1, 3, 5, 4] {
        peer.send_to(&packets[i], target).await.unwrap();
    }
    let (levels, _) = loud_frames(&mut media, 6).await;
    let expected: Vec<i16> = (1..=6).map(|k| decoded_level(1000 * k)).collect();
    assert_eq!(levels, expected, "in sequence order, one frame each");

    // Our audio goes to the peer's real address (its first packet's source), as PCMU.
    let frame: Frame = [2000; FRAME];
    media.play(&frame).await.unwrap();
    let mut buffer = [0u8; 1500];
    let (len, _) = tokio::time::timeout(Duration::from_secs(2), peer.recv_from(&mut buffer)).await.unwrap().unwrap();
    let packet = RtpReader::new(&buffer[..len]).unwrap();
    assert_eq!((packet.payload_type(), packet.payload().len()), (0, FRAME));
    assert_eq!(g711::ulaw_to_linear(packet.payload()[0]), decoded_level(2000));
    assert!(packet.mark(), "the first packet we send starts a talk spurt");

    // A mark is answered once the line's frames have been sent.
    media.mark(LineId(3)).await.unwrap();
    assert_eq!(media.next_event().await, TransportEvent::Played(LineId(3)));
}

#[tokio::test]
async fn packets_of_30_ms_are_cut_into_20_ms_frames() {
    let (gateway, peer) = (socket().await, socket().await);
    let mut media = RtpMedia::new(gateway.clone(), &negotiated(), RtpMediaConfig::default()).unwrap();
    let mut sender = RtpSender::new(9, 0, 0);
    // Three 30 ms packets (240 samples) are 90 ms: four full frames and a half.
    for k in 1..=3i16 {
        let mut payload = [0u8; 240];
        g711::encode_ulaw(&[1000 * k; 240], &mut payload);
        peer.send_to(&sender.audio(0, &payload, 240), gateway.local_addr().unwrap()).await.unwrap();
    }
    let (levels, _) = loud_frames(&mut media, 4).await;
    let l = decoded_level;
    assert_eq!(levels, [l(1000), l(1000), l(2000), l(3000)], "the second frame starts mid-packet");
}

#[tokio::test]
async fn a_key_press_arrives_once_and_strangers_are_not_heard() {
    let (gateway, peer, stranger) = (socket().await, socket().await, socket().await);
    let mut media = RtpMedia::new(gateway.clone(), &negotiated(), RtpMediaConfig::default()).unwrap();
    let target = gateway.local_addr().unwrap();
    let mut sender = RtpSender::new(11, 0, 0);
    peer.send_to(&sender.audio(0, &tone(500), FRAME as u32), target).await.unwrap();
    for packet in sender.key_press(101, &key_press_packets('5', 100, 20, 8000), 800) {
        peer.send_to(&packet, target).await.unwrap();
    }
    // Someone else's audio on our port, after the peer latched.
    let mut other = RtpSender::new(99, 0, 0);
    for _ in 0..5 {
        stranger.send_to(&other.audio(0, &tone(8000), FRAME as u32), target).await.unwrap();
    }
    for _ in 0..4 {
        peer.send_to(&sender.audio(0, &tone(700), FRAME as u32), target).await.unwrap();
    }
    let (levels, others) = loud_frames(&mut media, 5).await;
    assert_eq!(others, [TransportEvent::Dtmf('5')], "one key press, reported once");
    // The key press's packets hold their places in the sequence: no loss is concealed.
    let (quiet, loud) = (decoded_level(500), decoded_level(700));
    assert_eq!(levels, [quiet, loud, loud, loud, loud], "the stranger was not heard");
    assert_eq!(media.strangers(), 5);
}

#[tokio::test]
async fn silence_comes_as_frames_and_a_peer_gone_quiet_is_lost() {
    let gateway = socket().await;
    let config = RtpMediaConfig { rtp_timeout: Duration::from_millis(300), ..RtpMediaConfig::default() };
    let mut media = RtpMedia::new(gateway, &negotiated(), config).unwrap();
    let started = std::time::Instant::now();
    let mut silent_frames = 0;
    let reason = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match media.next_event().await {
                TransportEvent::Audio(frame) => {
                    assert!(frame.iter().all(|&s| s == 0));
                    silent_frames += 1;
                }
                TransportEvent::Lost(reason) => return reason,
                other => panic!("unexpected {other:?}"),
            }
        }
    })
    .await
    .expect("the call is lost");
    assert!(reason.contains("no RTP"), "{reason}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(silent_frames >= 10, "a frame every 20 ms until then: {silent_frames}");
}
