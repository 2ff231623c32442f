//! Negotiating permessage-deflate (RFC 7692 §5, §7.1): parsing the
//! `Sec-WebSocket-Extensions` offers a client sends and the answer a server gives,
//! choosing parameters by a [`DeflateConfig`], and writing both.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::fmt::Write as _;

use super::DeflateConfig;

/// The extension's name in `Sec-WebSocket-Extensions`.
pub const EXTENSION: &str = "permessage-deflate";

/// One permessage-deflate offer from a client, parsed and validated (§7.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offer {
    /// The client asks the server not to reuse its compression context.
    pub server_no_context_takeover: bool,
    /// The client will not reuse its compression context (a hint to the server).
    pub client_no_context_takeover: bool,
    /// The largest window the server may compress with, if the client limits it.
    pub server_max_window_bits: Option<u8>,
    /// The client can limit its own window: `Some(None)` without a value, `Some(Some(n))`
    /// at most `n` bits; `None` if the parameter is absent (the server may then not
    /// limit the client's window).
    pub client_max_window_bits: Option<Option<u8>>,
}

/// What both sides agreed, from the server's answer: the parameters each end
/// compresses and inflates with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Agreement {
    /// The server resets its compressor after every message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after every message.
    pub client_no_context_takeover: bool,
    /// The server compresses with a window of at most this many bits (8-15).
    pub server_max_window_bits: u8,
    /// The client compresses with a window of at most this many bits (8-15).
    pub client_max_window_bits: u8,
}

impl Default for Agreement {
    fn default() -> Agreement {
        Agreement {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }
}

/// Why an offer or an answer is refused (§7.1: unknown or repeated parameters,
/// values that are not a decimal 8-15 without leading zeros, parameters the answer may
/// not carry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NegotiationError {
    /// A parameter RFC 7692 does not define.
    UnknownParameter,
    /// A parameter given twice.
    DuplicateParameter,
    /// A value missing, present where none is allowed, or not 8-15.
    InvalidValue,
    /// (Client) the server answered with `client_max_window_bits` that was not offered,
    /// or with a window larger than the one offered.
    NotOffered,
    /// (Client) the server answered with more than one permessage-deflate, or with an
    /// extension that was not offered.
    UnexpectedExtension,
    /// A malformed `Sec-WebSocket-Extensions` value.
    Syntax,
}

impl fmt::Display for NegotiationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NegotiationError::UnknownParameter => "unknown permessage-deflate parameter",
            NegotiationError::DuplicateParameter => "repeated permessage-deflate parameter",
            NegotiationError::InvalidValue => "invalid permessage-deflate parameter value",
            NegotiationError::NotOffered => "permessage-deflate parameter that was not offered",
            NegotiationError::UnexpectedExtension => "extension that was not offered",
            NegotiationError::Syntax => "malformed Sec-WebSocket-Extensions",
        })
    }
}

impl core::error::Error for NegotiationError {}

/// One element of an extension list: its name and parameters (`value` unquoted).
struct Element<'a> {
    name: &'a str,
    params: Vec<(&'a str, Option<&'a str>)>,
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Splits a `Sec-WebSocket-Extensions` value into elements (RFC 6455 §9.1: a
/// comma-separated list of `name *( ";" param [ "=" token / quoted-string ] )`).
fn elements(value: &str) -> Result<Vec<Element<'_>>, NegotiationError> {
    let mut out = Vec::new();
    // Split on commas and semicolons outside quoted strings.
    let bytes = value.as_bytes();
    let mut parts: Vec<(&str, u8)> = Vec::new(); // (piece, the separator after it)
    let (mut start, mut quoted, mut i) = (0, false, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => quoted = !quoted,
            b'\\' if quoted => i += 1,
            c @ (b',' | b';') if !quoted => {
                parts.push((&value[start..i], c));
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if quoted {
        return Err(NegotiationError::Syntax);
    }
    parts.push((&value[start..], b','));
    let mut current: Option<Element<'_>> = None;
    for (piece, sep) in parts {
        let piece = piece.trim_matches([' ', '\t']);
        match current.as_mut() {
            None => {
                if piece.is_empty() && sep == b',' {
                    continue; // empty list elements are allowed (#rule)
                }
                if !is_token(piece) {
                    return Err(NegotiationError::Syntax);
                }
                current = Some(Element {
                    name: piece,
                    params: Vec::new(),
                });
            }
            Some(element) => {
                let (name, value) = match piece.split_once('=') {
                    Some((n, v)) => (
                        n.trim_matches([' ', '\t']),
                        Some(unquote(v.trim_matches([' ', '\t']))?),
                    ),
                    None => (piece, None),
                };
                if !is_token(name) {
                    return Err(NegotiationError::Syntax);
                }
                element.params.push((name, value));
            }
        }
        if sep == b',' {
            out.extend(current.take());
        }
    }
    Ok(out)
}

/// A parameter value: a token, or a quoted string (whose content must be a token too,
/// RFC 6455 §9.1).
fn unquote(v: &str) -> Result<&str, NegotiationError> {
    let inner = match v.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"').ok_or(NegotiationError::Syntax)?,
        None => v,
    };
    if is_token(inner) {
        Ok(inner)
    } else {
        Err(NegotiationError::Syntax)
    }
}

/// A window size: a decimal 8-15 without leading zeros (§7.1.2).
fn window_bits(value: Option<&str>) -> Result<u8, NegotiationError> {
    match value {
        Some(v) if v.len() <= 2 && !v.starts_with('0') => match v.parse::<u8>() {
            Ok(n @ 8..=15) => Ok(n),
            _ => Err(NegotiationError::InvalidValue),
        },
        _ => Err(NegotiationError::InvalidValue),
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T) -> Result<(), NegotiationError> {
    if slot.is_some() {
        return Err(NegotiationError::DuplicateParameter);
    }
    *slot = Some(value);
    Ok(())
}

/// The parameters of one element, checked: each known one at most once, flags
/// without a value, windows 8-15 (`client_max_window_bits` may lack its value).
fn parse_params(params: &[(&str, Option<&str>)]) -> Result<Offer, NegotiationError> {
    let mut snct = None;
    let mut cnct = None;
    let mut smwb = None;
    let mut cmwb = None;
    for &(name, value) in params {
        let flag = |v: Option<&str>| match v {
            None => Ok(()),
            Some(_) => Err(NegotiationError::InvalidValue),
        };
        if name.eq_ignore_ascii_case("server_no_context_takeover") {
            flag(value)?;
            set_once(&mut snct, ())?;
        } else if name.eq_ignore_ascii_case("client_no_context_takeover") {
            flag(value)?;
            set_once(&mut cnct, ())?;
        } else if name.eq_ignore_ascii_case("server_max_window_bits") {
            set_once(&mut smwb, window_bits(value)?)?;
        } else if name.eq_ignore_ascii_case("client_max_window_bits") {
            let bits = match value {
                None => None,
                v => Some(window_bits(v)?),
            };
            set_once(&mut cmwb, bits)?;
        } else {
            return Err(NegotiationError::UnknownParameter);
        }
    }
    Ok(Offer {
        server_no_context_takeover: snct.is_some(),
        client_no_context_takeover: cnct.is_some(),
        server_max_window_bits: smwb,
        client_max_window_bits: cmwb,
    })
}

/// The permessage-deflate offers in a request's `Sec-WebSocket-Extensions` values,
/// in order (other extensions are skipped), each parsed or refused. A malformed
/// header yields one `Err`.
pub fn parse_offers<'a>(
    values: impl Iterator<Item = &'a [u8]>,
) -> Vec<Result<Offer, NegotiationError>> {
    let mut out = Vec::new();
    for value in values {
        let Ok(value) = core::str::from_utf8(value) else {
            out.push(Err(NegotiationError::Syntax));
            continue;
        };
        match elements(value) {
            Ok(list) => {
                for e in list {
                    if e.name.eq_ignore_ascii_case(EXTENSION) {
                        out.push(parse_params(&e.params));
                    }
                }
            }
            Err(e) => out.push(Err(e)),
        }
    }
    out
}

/// The server's choice: the first valid offer it can accept under `config`, and the
/// parameters agreed (write them with [`Agreement::response`]). Offers are declined,
/// never answered with an error (§7.1: the server declines an offer it cannot or will
/// not accept, and may accept a later one).
///
/// Every window is honoured: the compressor runs with the agreed window, and a
/// window of 8 bits runs with 9, whose largest distance (250) fits 8 bits.
pub fn choose(
    offers: &[Result<Offer, NegotiationError>],
    config: &DeflateConfig,
) -> Option<Agreement> {
    offers
        .iter()
        .filter_map(|o| o.as_ref().ok())
        .find_map(|offer| accept_offer(offer, config))
}

fn accept_offer(offer: &Offer, config: &DeflateConfig) -> Option<Agreement> {
    let server_bits = match offer.server_max_window_bits {
        Some(asked) => asked.min(config.server_max_window_bits),
        None => config.server_max_window_bits,
    };
    let client_bits = match offer.client_max_window_bits {
        // The client can take a limit: ours, and no more than it offered.
        Some(limit) => limit.unwrap_or(15).min(config.client_max_window_bits),
        // It cannot: it compresses with up to 15 bits, which our inflater reads.
        None => 15,
    };
    Some(Agreement {
        server_no_context_takeover: offer.server_no_context_takeover
            || config.server_no_context_takeover,
        client_no_context_takeover: offer.client_no_context_takeover
            || config.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    })
}

impl Agreement {
    /// True if this is a legal answer to `offer` (RFC 7692 §7.1): the server's window
    /// no larger than asked, the client's limited only if the client allowed it, and
    /// `server_no_context_takeover` kept if asked for.
    pub fn answers(&self, offer: &Offer) -> bool {
        let client_ok = match offer.client_max_window_bits {
            None => self.client_max_window_bits == 15,
            Some(limit) => self.client_max_window_bits <= limit.unwrap_or(15),
        };
        (8..=15).contains(&self.server_max_window_bits)
            && (8..=15).contains(&self.client_max_window_bits)
            && self.server_max_window_bits <= offer.server_max_window_bits.unwrap_or(15)
            && client_ok
            && (self.server_no_context_takeover || !offer.server_no_context_takeover)
    }

    /// The `Sec-WebSocket-Extensions` value of the server's answer. Windows of 15 bits
    /// are left out (the default), except that `client_max_window_bits` is only ever
    /// sent when `offer` allowed it (§7.1.2.2), which `choose` guarantees.
    pub fn response(&self) -> String {
        let mut out = String::from(EXTENSION);
        if self.server_no_context_takeover {
            out.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            out.push_str("; client_no_context_takeover");
        }
        if self.server_max_window_bits < 15 {
            let _ = write!(
                out,
                "; server_max_window_bits={}",
                self.server_max_window_bits
            );
        }
        if self.client_max_window_bits < 15 {
            let _ = write!(
                out,
                "; client_max_window_bits={}",
                self.client_max_window_bits
            );
        }
        out
    }

    /// (Client) validates the server's answer against what `config` offered (see
    /// [`offer`]): one permessage-deflate element, known parameters once each, windows
    /// 8-15, `client_max_window_bits` only if offered, `server_max_window_bits` no
    /// larger than asked. Our window is the server's `client_max_window_bits`, or
    /// without it the one `config` asked for. `Ok(None)` if the server answered
    /// without extensions.
    pub fn from_response<'a>(
        values: impl Iterator<Item = &'a [u8]>,
        config: &DeflateConfig,
    ) -> Result<Option<Agreement>, NegotiationError> {
        let mut found = None;
        for value in values {
            let value = core::str::from_utf8(value).map_err(|_| NegotiationError::Syntax)?;
            for e in elements(value)? {
                if !e.name.eq_ignore_ascii_case(EXTENSION) || found.is_some() {
                    return Err(NegotiationError::UnexpectedExtension);
                }
                found = Some(parse_params(&e.params)?);
            }
        }
        let Some(answer) = found else {
            return Ok(None);
        };
        let server_bits = answer.server_max_window_bits.unwrap_or(15);
        if config.server_max_window_bits < 15 && server_bits > config.server_max_window_bits {
            return Err(NegotiationError::NotOffered);
        }
        let client_bits = match answer.client_max_window_bits {
            // The server does not limit our window: we keep to the one we asked for
            // (the server inflates any window up to 15 bits).
            None => config.client_max_window_bits,
            // We always offer client_max_window_bits, with our limit if below 15.
            Some(None) => return Err(NegotiationError::InvalidValue),
            Some(Some(n)) if n > config.client_max_window_bits => {
                return Err(NegotiationError::NotOffered);
            }
            Some(Some(n)) => n,
        };
        if config.server_no_context_takeover && !answer.server_no_context_takeover {
            // We asked the server not to keep its context; it must agree or decline.
            return Err(NegotiationError::NotOffered);
        }
        Ok(Some(Agreement {
            server_no_context_takeover: answer.server_no_context_takeover,
            client_no_context_takeover: answer.client_no_context_takeover
                || config.client_no_context_takeover,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        }))
    }
}

/// (Client) the `Sec-WebSocket-Extensions` value offering permessage-deflate as
/// `config` asks: `client_max_window_bits` always (we can honour any window), with
/// our limit if below 15; `server_max_window_bits` if we want the server's window
/// smaller; the no-context-takeover flags we ask for.
pub fn offer(config: &DeflateConfig) -> String {
    let mut out = String::from(EXTENSION);
    if config.server_no_context_takeover {
        out.push_str("; server_no_context_takeover");
    }
    if config.client_no_context_takeover {
        out.push_str("; client_no_context_takeover");
    }
    if config.server_max_window_bits < 15 {
        let _ = write!(
            out,
            "; server_max_window_bits={}",
            config.server_max_window_bits
        );
    }
    if config.client_max_window_bits < 15 {
        let _ = write!(
            out,
            "; client_max_window_bits={}",
            config.client_max_window_bits
        );
    } else {
        out.push_str("; client_max_window_bits");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offers(v: &str) -> Vec<Result<Offer, NegotiationError>> {
        parse_offers(core::iter::once(v.as_bytes()))
    }

    #[test]
    fn offers_are_parsed_in_order_and_other_extensions_skipped() {
        let list = offers(
            "x-webkit-deflate-frame, permessage-deflate; client_max_window_bits, \
             permessage-deflate; server_max_window_bits=\"10\"; client_no_context_takeover",
        );
        assert_eq!(
            list,
            [
                Ok(Offer {
                    client_max_window_bits: Some(None),
                    ..Offer::default()
                }),
                Ok(Offer {
                    server_max_window_bits: Some(10),
                    client_no_context_takeover: true,
                    ..Offer::default()
                }),
            ]
        );
    }

    #[test]
    fn bad_parameters_refuse_the_offer() {
        for (v, e) in [
            (
                "permessage-deflate; foo",
                NegotiationError::UnknownParameter,
            ),
            (
                "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                NegotiationError::DuplicateParameter,
            ),
            (
                "permessage-deflate; server_no_context_takeover=1",
                NegotiationError::InvalidValue,
            ),
            (
                "permessage-deflate; server_max_window_bits",
                NegotiationError::InvalidValue,
            ),
            (
                "permessage-deflate; server_max_window_bits=7",
                NegotiationError::InvalidValue,
            ),
            (
                "permessage-deflate; server_max_window_bits=16",
                NegotiationError::InvalidValue,
            ),
            (
                "permessage-deflate; server_max_window_bits=010",
                NegotiationError::InvalidValue,
            ),
            (
                "permessage-deflate; client_max_window_bits=abc",
                NegotiationError::InvalidValue,
            ),
            (
                "permessage-deflate; client_max_window_bits=\"8",
                NegotiationError::Syntax,
            ),
        ] {
            assert_eq!(offers(v), [Err(e)], "{v}");
        }
    }

    #[test]
    fn every_window_combination_is_agreed_within_what_was_asked() {
        for server_cfg in 8..=15u8 {
            for client_cfg in 8..=15u8 {
                let config = DeflateConfig {
                    server_max_window_bits: server_cfg,
                    client_max_window_bits: client_cfg,
                    ..DeflateConfig::default()
                };
                for asked in (8..=15u8).map(Some).chain([None]) {
                    for client_limit in (8..=15u8).map(|n| Some(Some(n))).chain([Some(None), None])
                    {
                        let offer = Offer {
                            server_max_window_bits: asked,
                            client_max_window_bits: client_limit,
                            ..Offer::default()
                        };
                        let a = choose(&[Ok(offer)], &config).expect("accepted");
                        assert!(a.server_max_window_bits <= asked.unwrap_or(15));
                        assert!(a.server_max_window_bits <= server_cfg);
                        match client_limit {
                            None => assert_eq!(a.client_max_window_bits, 15),
                            Some(l) => {
                                assert!(a.client_max_window_bits <= l.unwrap_or(15));
                                assert!(a.client_max_window_bits <= client_cfg);
                            }
                        }
                        // The client accepts the answer to its own offer.
                        let client_config = DeflateConfig {
                            server_max_window_bits: asked.unwrap_or(15),
                            client_max_window_bits: client_limit.flatten().unwrap_or(15),
                            ..DeflateConfig::default()
                        };
                        let response = a.response();
                        let back = Agreement::from_response(
                            core::iter::once(response.as_bytes()),
                            &client_config,
                        );
                        if client_limit.is_some() {
                            assert_eq!(back, Ok(Some(a)), "{response}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_client_refuses_answers_it_did_not_ask_for() {
        let config = DeflateConfig::default();
        let check = |v: &str| Agreement::from_response(core::iter::once(v.as_bytes()), &config);
        assert_eq!(check("permessage-deflate"), Ok(Some(Agreement::default())));
        assert_eq!(
            check("permessage-deflate; server_max_window_bits=9; client_no_context_takeover"),
            Ok(Some(Agreement {
                server_max_window_bits: 9,
                client_no_context_takeover: true,
                ..Agreement::default()
            }))
        );
        assert_eq!(check("x-other"), Err(NegotiationError::UnexpectedExtension));
        assert_eq!(
            check("permessage-deflate, permessage-deflate"),
            Err(NegotiationError::UnexpectedExtension)
        );
        assert_eq!(
            check("permessage-deflate; client_max_window_bits"),
            Err(NegotiationError::InvalidValue)
        );
        assert_eq!(
            check("permessage-deflate; bogus"),
            Err(NegotiationError::UnknownParameter)
        );
        let limited = DeflateConfig {
            server_max_window_bits: 10,
            ..DeflateConfig::default()
        };
        assert_eq!(
            Agreement::from_response(
                core::iter::once(&b"permessage-deflate; server_max_window_bits=12"[..]),
                &limited
            ),
            Err(NegotiationError::NotOffered)
        );
        assert_eq!(
            Agreement::from_response(core::iter::once(&b"permessage-deflate"[..]), &limited),
            Err(NegotiationError::NotOffered),
            "asked for at most 10 bits, got the default 15"
        );
    }

    #[test]
    fn the_offer_says_what_the_config_asks() {
        assert_eq!(
            offer(&DeflateConfig::default()),
            "permessage-deflate; client_max_window_bits"
        );
        let c = DeflateConfig {
            server_no_context_takeover: true,
            client_max_window_bits: 12,
            server_max_window_bits: 11,
            ..DeflateConfig::default()
        };
        assert_eq!(
            offer(&c),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=11; client_max_window_bits=12"
        );
    }
}
