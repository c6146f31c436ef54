//! The TwiML the gateway answers `/twilio/voice` with: a bidirectional `<Connect><Stream>`
//! to our `/twilio/stream`, with the call id and its single-use token as `<Parameter>`s
//! (Twilio passes them back in the stream's `start.customParameters`). See
//! <https://www.twilio.com/docs/voice/twiml/stream>.

/// Escapes text for an XML attribute value.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// `<Response><Connect><Stream url=...>` with one `<Parameter>` per pair.
pub fn connect_stream(stream_url: &str, parameters: &[(&str, &str)]) -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Connect>");
    xml.push_str(&format!("<Stream url=\"{}\">", escape(stream_url)));
    for (name, value) in parameters {
        xml.push_str(&format!("<Parameter name=\"{}\" value=\"{}\"/>", escape(name), escape(value)));
    }
    xml.push_str("</Stream></Connect></Response>");
    xml
}

/// Ends the call at once (e.g. an inbound call to a number we do not serve).
pub fn hang_up(say: Option<&str>) -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>");
    if let Some(text) = say {
        xml.push_str(&format!("<Say>{}</Say>", escape(text)));
    }
    xml.push_str("<Hangup/></Response>");
    xml
}

/// Refuses an inbound call with a busy signal (no slot free for it); the caller is not billed.
pub fn reject_busy() -> String {
    String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Reject reason=\"busy\"/></Response>")
}

/// The `<Connect><Stream>` of a TwiML document, as Twilio reads it: the stream URL and its
/// `<Parameter>`s in order. The simulator's Twilio side follows our own TwiML with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectStream {
    pub url: String,
    pub parameters: Vec<(String, String)>,
}

/// Finds the first `<Connect><Stream>` in `xml`; `None` when the document has none (e.g. a
/// `<Hangup/>`) or is not well-formed.
pub fn parse_connect_stream(xml: &str) -> Option<ConnectStream> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut in_connect = false;
    let mut stream: Option<ConnectStream> = None;
    let attribute = |element: &quick_xml::events::BytesStart<'_>, name: &[u8]| -> Option<String> {
        element
            .attributes()
            .flatten()
            .find(|a| a.key.as_ref() == name)
            .and_then(|a| a.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok().map(|v| v.into_owned()))
    };
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                b"Connect" => in_connect = true,
                b"Stream" if in_connect && stream.is_none() => {
                    stream = Some(ConnectStream { url: attribute(&e, b"url")?, parameters: Vec::new() });
                }
                b"Parameter" => {
                    if let Some(stream) = stream.as_mut() {
                        stream.parameters.push((attribute(&e, b"name")?, attribute(&e, b"value").unwrap_or_default()));
                    }
                }
                _ => {}
            },
            Event::End(e) if e.name().as_ref() == b"Connect" => return stream,
            Event::Eof => return stream,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_stream_parses_back_with_unescaped_parameters() {
        let xml = connect_stream("wss://gw.example.com/twilio/stream", &[("callId", "abc"), ("token", "a&b\"<")]);
        assert_eq!(
            parse_connect_stream(&xml),
            Some(ConnectStream {
                url: "wss://gw.example.com/twilio/stream".into(),
                parameters: vec![("callId".into(), "abc".into()), ("token".into(), "a&b\"<".into())],
            })
        );
        assert_eq!(parse_connect_stream(&hang_up(Some("Bye"))), None);
        assert_eq!(parse_connect_stream("<Response><Connect><Stream"), None);
    }

    #[test]
    fn connect_stream_is_the_documented_shape_with_escaped_values() {
        let xml = connect_stream("wss://gw.example.com/twilio/stream", &[("callId", "abc"), ("token", "a&b\"<")]);
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Connect>\
             <Stream url=\"wss://gw.example.com/twilio/stream\">\
             <Parameter name=\"callId\" value=\"abc\"/><Parameter name=\"token\" value=\"a&amp;b&quot;&lt;\"/>\
             </Stream></Connect></Response>"
        );
        assert_eq!(
            hang_up(Some("Sorry & goodbye")),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>Sorry &amp; goodbye</Say><Hangup/></Response>"
        );
    }
}
