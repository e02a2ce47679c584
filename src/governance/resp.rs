//! A blocking Redis connection speaking RESP2 over std TCP: commands out as arrays of bulk strings,
//! replies parsed back. Used only by the governance thread and the `corelay keys` CLI, never by a
//! worker. Pipelining is the caller's: write several commands, then read as many replies.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Largest bulk string or array accepted from Redis; Corelay's replies are tiny.
const MAX_REPLY_ITEMS: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Reply::Integer(i) => Some(*i),
            Reply::Bulk(Some(b)) => std::str::from_utf8(b).ok()?.parse().ok(),
            _ => None,
        }
    }

    pub fn as_text(&self) -> Option<String> {
        match self {
            Reply::Status(s) => Some(s.clone()),
            Reply::Bulk(Some(b)) => String::from_utf8(b.clone()).ok(),
            _ => None,
        }
    }

    pub fn items(&self) -> &[Reply] {
        match self {
            Reply::Array(Some(items)) => items,
            _ => &[],
        }
    }
}

/// Appends one command (`args[0]` is its name) in RESP's request form.
pub fn encode<A: AsRef<[u8]>>(args: &[A], out: &mut Vec<u8>) {
    array_header(args.len(), out);
    for arg in args {
        bulk(arg.as_ref(), out);
    }
}

/// Appends the header of a command of `count` arguments; the arguments follow as [`bulk`] strings.
pub fn array_header(count: usize, out: &mut Vec<u8>) {
    out.push(b'*');
    decimal(count as i64, out);
    out.extend_from_slice(b"\r\n");
}

/// Appends one argument.
pub fn bulk(arg: &[u8], out: &mut Vec<u8>) {
    bulk_of(&[arg], out);
}

/// Appends one argument made of `parts` joined, without joining them first.
pub fn bulk_of(parts: &[&[u8]], out: &mut Vec<u8>) {
    out.push(b'$');
    decimal(parts.iter().map(|p| p.len()).sum::<usize>() as i64, out);
    out.extend_from_slice(b"\r\n");
    for part in parts {
        out.extend_from_slice(part);
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends one argument that is a number, in decimal.
pub fn bulk_int(n: i64, out: &mut Vec<u8>) {
    let (digits, at) = decimal_digits(n);
    bulk(&digits[at..], out);
}

/// Appends `n` in decimal.
fn decimal(n: i64, out: &mut Vec<u8>) {
    let (digits, at) = decimal_digits(n);
    out.extend_from_slice(&digits[at..]);
}

/// `n` in decimal at the end of a stack buffer, from the returned index: no temporary `String` (the
/// governance thread encodes tens of numbers per request).
fn decimal_digits(n: i64) -> ([u8; 20], usize) {
    let mut digits = [0u8; 20];
    let mut rest = n.unsigned_abs();
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        at -= 1;
        digits[at] = b'-';
    }
    (digits, at)
}

pub struct Connection {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Connection {
    /// Connects to `HOST:PORT` with every connect, read and write bounded by `timeout`.
    pub fn connect(address: &str, timeout: Duration) -> io::Result<Connection> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{address}: no address"));
        for addr in address.to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(timeout))?;
                    stream.set_write_timeout(Some(timeout))?;
                    stream.set_nodelay(true)?;
                    let reader = BufReader::new(stream.try_clone()?);
                    return Ok(Connection { writer: stream, reader });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The write half and the buffered read half, for a caller that reads replies on another thread
    /// (the read half then waits as long as it must: its timeout is the caller's to enforce).
    pub fn into_parts(self) -> io::Result<(TcpStream, BufReader<TcpStream>)> {
        self.reader.get_ref().set_read_timeout(None)?;
        Ok((self.writer, self.reader))
    }

    /// Writes pre-encoded commands in one go.
    pub fn write_all(&mut self, encoded: &[u8]) -> io::Result<()> {
        self.writer.write_all(encoded)
    }

    pub fn read_reply(&mut self) -> io::Result<Reply> {
        read_reply(&mut self.reader)
    }

    /// One command, one reply.
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<Reply> {
        let mut out = Vec::new();
        encode(args, &mut out);
        self.write_all(&out)?;
        self.read_reply()
    }
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    let n = reader.by_ref().take(64 * 1024).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "redis closed the connection"));
    }
    if !line.ends_with(b"\r\n") {
        return Err(invalid("a RESP line without CRLF"));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|_| invalid("a RESP line that is not UTF-8"))
}

fn length(text: &str) -> io::Result<Option<usize>> {
    let n: i64 = text.parse().map_err(|_| invalid(format!("bad RESP length `{text}`")))?;
    match n {
        -1 => Ok(None),
        n if n >= 0 && (n as usize) <= MAX_REPLY_ITEMS * 512 => Ok(Some(n as usize)),
        _ => Err(invalid(format!("RESP length out of range: {n}"))),
    }
}

pub fn read_reply(reader: &mut impl BufRead) -> io::Result<Reply> {
    let line = read_line(reader)?;
    // `get` rather than `split_at`: a first byte that begins a multi-byte character must not panic.
    let (kind, rest) = (line.get(..1).unwrap_or(""), line.get(1..).unwrap_or(""));
    match kind {
        "+" => Ok(Reply::Status(rest.to_string())),
        "-" => Ok(Reply::Error(rest.to_string())),
        ":" => rest.parse().map(Reply::Integer).map_err(|_| invalid(format!("bad RESP integer `{rest}`"))),
        "$" => match length(rest)? {
            None => Ok(Reply::Bulk(None)),
            Some(n) => {
                let mut data = vec![0; n + 2];
                reader.read_exact(&mut data)?;
                if !data.ends_with(b"\r\n") {
                    return Err(invalid("a bulk string without CRLF"));
                }
                data.truncate(n);
                Ok(Reply::Bulk(Some(data)))
            }
        },
        "*" => match length(rest)? {
            None => Ok(Reply::Array(None)),
            Some(n) if n > MAX_REPLY_ITEMS => Err(invalid("RESP array too long")),
            Some(n) => {
                (0..n).map(|_| read_reply(reader)).collect::<io::Result<Vec<_>>>().map(|v| Reply::Array(Some(v)))
            }
        },
        _ => Err(invalid(format!("unknown RESP type in `{line}`"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_encode_as_bulk_string_arrays() {
        let mut out = Vec::new();
        encode(&["GET", "k"], &mut out);
        assert_eq!(out, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    }

    #[test]
    fn numbers_and_joined_parts_encode_as_bulk_strings() {
        let mut out = Vec::new();
        array_header(4, &mut out);
        bulk_int(0, &mut out);
        bulk_int(-1, &mut out);
        bulk_int(i64::MIN, &mut out);
        bulk_of(&[b"p:k:", b"name", b":"], &mut out);
        assert_eq!(out, b"*4\r\n$1\r\n0\r\n$2\r\n-1\r\n$20\r\n-9223372036854775808\r\n$9\r\np:k:name:\r\n");
    }

    #[test]
    fn replies_of_every_type_parse() {
        let bytes = b"*5\r\n+OK\r\n-ERR no\r\n:-3\r\n$2\r\nhi\r\n$-1\r\n";
        let reply = read_reply(&mut &bytes[..]).unwrap();
        assert_eq!(
            reply,
            Reply::Array(Some(vec![
                Reply::Status("OK".into()),
                Reply::Error("ERR no".into()),
                Reply::Integer(-3),
                Reply::Bulk(Some(b"hi".to_vec())),
                Reply::Bulk(None),
            ]))
        );
    }

    #[test]
    fn truncated_replies_are_errors_not_hangs() {
        assert!(read_reply(&mut &b"$5\r\nab"[..]).is_err());
        assert!(read_reply(&mut &b":12"[..]).is_err());
        assert!(read_reply(&mut &b"?x\r\n"[..]).is_err());
    }
}
