//! Telephony transports and carriers. Twilio's Media Streams is the first transport; SIP
//! follows behind the same seams.

pub mod twilio;
