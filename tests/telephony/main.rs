//! Telephony edges against real sockets: the Twilio REST client against a local server that
//! speaks Twilio's documented Calls API format (the one mock allowed: Twilio is unreachable).

mod twilio_rest;
