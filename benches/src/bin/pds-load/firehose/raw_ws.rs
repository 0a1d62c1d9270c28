//! The least a firehose reader needs of a WebSocket client: the opening
//! handshake, then unmasked server frames parsed in place from large
//! socket reads, so that a hundred readers on the server's CPUs cost
//! little more than their socket reads. Payloads are not copied; pings
//! are answered; a close frame, a fragmented message or a protocol error
//! ends the reading.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 256 * 1024;

/// Opens a WebSocket to `path` on `address` (`host:port`) and returns the
/// socket once the server has answered `101 Switching Protocols`.
pub async fn connect(address: &str, path: &str) -> io::Result<TcpStream> {
    let mut socket = TcpStream::connect(address).await?;
    socket.set_nodelay(true)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await?;
    // Byte by byte up to the blank line, so no frame byte is consumed.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if socket.read(&mut byte).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed during the WebSocket handshake",
            ));
        }
        head.push(byte[0]);
        if head.len() > 16 * 1024 {
            return Err(io::Error::other("handshake answer too long"));
        }
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        let line = String::from_utf8_lossy(&head);
        let line = line.lines().next().unwrap_or_default().to_owned();
        return Err(io::Error::other(format!("handshake refused: {line}")));
    }
    Ok(socket)
}

/// Reads server frames from a connected socket.
pub struct Reader {
    socket: TcpStream,
    buffer: Vec<u8>,
    /// Where the unparsed bytes start in `buffer`.
    start: usize,
    /// Payloads of pings not answered yet.
    pings: Vec<Vec<u8>>,
}

impl Reader {
    /// A reader of `socket`, just after the handshake.
    pub fn new(socket: TcpStream) -> Self {
        Reader {
            socket,
            buffer: Vec::with_capacity(READ_CHUNK),
            start: 0,
            pings: Vec::new(),
        }
    }

    /// Answers the pings seen so far with pongs (client frames are masked;
    /// the mask is zero).
    pub async fn answer_pings(&mut self) -> io::Result<()> {
        for payload in std::mem::take(&mut self.pings) {
            let mut frame = vec![0x8a, 0x80 | payload.len() as u8, 0, 0, 0, 0];
            frame.extend_from_slice(&payload);
            self.socket.write_all(&frame).await?;
        }
        Ok(())
    }

    /// Reads what the socket has; `false` once the server closed it.
    pub async fn read_more(&mut self) -> io::Result<bool> {
        if self.start > 0 {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        self.buffer.reserve(READ_CHUNK);
        let n = self.socket.read_buf(&mut self.buffer).await?;
        Ok(n > 0)
    }

    /// Calls `on_message` with the payload of each complete binary
    /// message in the buffer; returns whether the stream ended (close
    /// frame or a frame this reader does not handle). Pings are kept for
    /// [`Reader::answer_pings`].
    pub fn for_each_message(&mut self, mut on_message: impl FnMut(&[u8])) -> bool {
        loop {
            let bytes = &self.buffer[self.start..];
            let Some((opcode, header_len, payload_len)) = parse_header(bytes) else {
                return false;
            };
            let Some(end) = header_len.checked_add(payload_len) else {
                return true;
            };
            if bytes.len() < end {
                return false;
            }
            let fin = bytes[0] & 0x80 != 0;
            let payload = &bytes[header_len..end];
            match (fin, opcode) {
                (true, 0x2) => on_message(payload),
                (true, 0x9) if payload.len() <= 125 => self.pings.push(payload.to_vec()),
                (true, 0x1) | (true, 0xa) => {}
                _ => return true,
            }
            self.start += end;
        }
    }
}

/// The opcode, header length and payload length of the frame at the start
/// of `bytes`, once its header is complete; server frames are not masked
/// (a masked one is skipped all the same).
fn parse_header(bytes: &[u8]) -> Option<(u8, usize, usize)> {
    let first = *bytes.first()?;
    let second = *bytes.get(1)?;
    let masked = second & 0x80 != 0;
    let (len, mut header) = match second & 0x7f {
        126 => (
            u64::from(u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?])),
            4,
        ),
        127 => (u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?), 10),
        n => (u64::from(n), 2),
    };
    if masked {
        header += 4;
    }
    if bytes.len() < header {
        return None;
    }
    Some((first & 0x0f, header, usize::try_from(len).ok()?))
}

#[cfg(test)]
mod tests {
    use super::parse_header;

    #[test]
    fn headers() {
        assert_eq!(parse_header(&[0x82, 5]), Some((2, 2, 5)));
        assert_eq!(parse_header(&[0x82, 126, 1, 0]), Some((2, 4, 256)));
        assert_eq!(
            parse_header(&[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
            Some((2, 10, 65536))
        );
        assert_eq!(parse_header(&[0x82, 126, 1]), None);
        assert_eq!(parse_header(&[0x82]), None);
    }
}
