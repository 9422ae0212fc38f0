//! Bytes as hex: the one way the probe writes them (serials, fingerprints,
//! the first bytes of a reply that is not what it should be).

/// Lowercase hex pairs joined by `separator`.
pub fn lower(bytes: &[u8], separator: &str) -> String {
    join(bytes, separator, |b| format!("{b:02x}"))
}

/// Uppercase hex pairs joined by `separator` (fingerprints, as OpenSSL).
pub fn upper(bytes: &[u8], separator: &str) -> String {
    join(bytes, separator, |b| format!("{b:02X}"))
}

fn join(bytes: &[u8], separator: &str, pair: impl Fn(u8) -> String) -> String {
    bytes
        .iter()
        .map(|&b| pair(b))
        .collect::<Vec<_>>()
        .join(separator)
}

/// How many leading bytes [`peek`] shows.
pub const PEEK: usize = 16;

/// The first bytes a peer sent, printable and in hex: enough to recognise
/// it without echoing it all.
pub fn peek(buf: &[u8]) -> String {
    let shown = &buf[..buf.len().min(PEEK)];
    let text: String = shown
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    format!("\"{text}\" ({})", lower(shown, " "))
}

/// The first bytes in hex only, "..." when there were more.
pub fn head(buf: &[u8]) -> String {
    let more = if buf.len() > PEEK { " ..." } else { "" };
    format!("{}{more}", lower(&buf[..buf.len().min(PEEK)], " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(lower(&[0x00, 0xab], ":"), "00:ab");
        assert_eq!(upper(&[0x00, 0xab], ":"), "00:AB");
        assert_eq!(lower(&[1, 2], ""), "0102");
        assert_eq!(peek(b"HTTP/1.1"), "\"HTTP/1.1\" (48 54 54 50 2f 31 2e 31)");
        assert_eq!(peek(&[0x16, 3]), "\"..\" (16 03)");
        assert_eq!(head(&[0xde, 0xad]), "de ad");
        assert!(head(&[0; 20]).ends_with("00 ..."));
    }
}
