//! The WebSocket relay of an upgraded app connection: bytes are copied both ways as they come, and the
//! frame boundaries are followed (headers only, payloads are not looked at) so that at shutdown each
//! side can be sent a Close frame (1001, going away) between two frames rather than inside one.
//!
//! It must not change, buffer or interpret what the two sides send: the only bytes of its own are the
//! two Close frames at shutdown, and none to a side that has already been sent a Close by its peer.

use std::time::Duration;

use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio_util::sync::CancellationToken;

type Reader = ReadHalf<TokioIo<Upgraded>>;
type Writer = WriteHalf<TokioIo<Upgraded>>;

/// After the Close frames, how long each side gets to answer with its own and hang up.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Joins the browser's and the upstream's upgraded connections until either side closes, or until
/// `shutdown`, when both are sent a Close frame (1001) and the connections end.
pub(super) async fn relay(client: OnUpgrade, upstream: OnUpgrade, shutdown: CancellationToken) {
    let (client, upstream) = tokio::join!(client, upstream);
    let (Ok(client), Ok(upstream)) = (client, upstream) else {
        tracing::debug!("a WebSocket upgrade did not complete on both sides");
        return;
    };
    let (mut client_in, mut client_out) = tokio::io::split(TokioIo::new(client));
    let (mut upstream_in, mut upstream_out) = tokio::io::split(TokioIo::new(upstream));
    let mut to_upstream = Frames::default();
    let mut to_client = Frames::default();
    let (up, down) = tokio::join!(
        pump(
            &mut client_in,
            &mut upstream_out,
            &mut to_upstream,
            &shutdown,
            Side::Upstream
        ),
        pump(
            &mut upstream_in,
            &mut client_out,
            &mut to_client,
            &shutdown,
            Side::Client
        ),
    );
    if up == Ended::Shutdown || down == Ended::Shutdown {
        // Both were sent a Close: give them a moment to answer with theirs, then hang up.
        let _ = tokio::time::timeout(
            CLOSE_GRACE,
            futures_util::future::join(drain(&mut client_in), drain(&mut upstream_in)),
        )
        .await;
        let _ = client_out.shutdown().await;
        let _ = upstream_out.shutdown().await;
        tracing::info!("WebSocket closed for shutdown (1001 going away)");
    }
}

/// Reads and drops what a side still sends (its Close frame), until it hangs up.
async fn drain(reader: &mut Reader) {
    let mut sink = [0u8; 1024];
    while matches!(reader.read(&mut sink).await, Ok(n) if n > 0) {}
}

/// Who a direction writes to: frames to the upstream are masked (RFC 6455 §5.3), to the client not.
#[derive(Clone, Copy)]
enum Side {
    Upstream,
    Client,
}

impl Side {
    /// A Close frame with status 1001 (going away), as this side must receive it.
    fn close_frame(self) -> Vec<u8> {
        const STATUS: [u8; 2] = 1001u16.to_be_bytes();
        match self {
            Side::Client => vec![0x88, 0x02, STATUS[0], STATUS[1]],
            Side::Upstream => {
                let key: [u8; 4] = crate::token::random_bytes();
                vec![
                    0x88,
                    0x82,
                    key[0],
                    key[1],
                    key[2],
                    key[3],
                    STATUS[0] ^ key[0],
                    STATUS[1] ^ key[1],
                ]
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// The reading side closed (or failed); the writing side was told.
    Closed,
    /// Shutdown: the writing side was sent a Close frame (unless its peer had sent one).
    Shutdown,
}

/// Copies `from` to `to` until `from` ends or, after `shutdown`, until the frame being copied is
/// complete; then sends the Close frame.
async fn pump(
    from: &mut Reader,
    to: &mut Writer,
    frames: &mut Frames,
    shutdown: &CancellationToken,
    side: Side,
) -> Ended {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let stopping = shutdown.is_cancelled();
        if stopping && frames.at_boundary() {
            break;
        }
        let limit = if stopping {
            frames.left_in_frame().min(buffer.len())
        } else {
            buffer.len()
        };
        let read = tokio::select! {
            read = from.read(&mut buffer[..limit]) => read,
            () = shutdown.cancelled(), if !stopping => continue,
        };
        let n = match read {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return Ended::Closed;
            }
            Ok(n) => n,
        };
        frames.feed(&buffer[..n]);
        if to.write_all(&buffer[..n]).await.is_err() {
            return Ended::Closed;
        }
    }
    if !frames.closed {
        let _ = to.write_all(&side.close_frame()).await;
        let _ = to.flush().await;
    }
    Ended::Shutdown
}

/// Follows the frame boundaries of one direction (RFC 6455 §5.2), header bytes only.
#[derive(Debug, Default)]
struct Frames {
    header: [u8; 14],
    /// Header bytes of the next frame seen so far.
    have: usize,
    /// Payload bytes of the current frame still to come.
    remaining: u64,
    /// A Close frame went this way: nothing more may follow it.
    closed: bool,
}

impl Frames {
    fn at_boundary(&self) -> bool {
        self.have == 0 && self.remaining == 0
    }

    /// How many bytes may be read without passing the end of the current frame (or header).
    fn left_in_frame(&self) -> usize {
        if self.remaining > 0 {
            usize::try_from(self.remaining).unwrap_or(usize::MAX)
        } else {
            self.header_len().saturating_sub(self.have).max(1)
        }
    }

    /// The length of the header being read, as far as its first two bytes tell.
    fn header_len(&self) -> usize {
        if self.have < 2 {
            return 2;
        }
        let extended = match self.header[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask = if self.header[1] & 0x80 != 0 { 4 } else { 0 };
        2 + extended + mask
    }

    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = usize::try_from(self.remaining)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                self.remaining -= n as u64;
                data = &data[n..];
                continue;
            }
            self.header[self.have] = data[0];
            self.have += 1;
            data = &data[1..];
            if self.have >= 2 && self.have == self.header_len() {
                self.remaining = match self.header[1] & 0x7f {
                    126 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
                    127 => {
                        let mut length = [0u8; 8];
                        length.copy_from_slice(&self.header[2..10]);
                        u64::from_be_bytes(length)
                    }
                    short => u64::from(short),
                };
                if self.header[0] & 0x0f == 0x8 {
                    self.closed = true;
                }
                self.have = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Frames;

    #[test]
    fn frame_boundaries_are_followed_across_reads() {
        let mut frames = Frames::default();
        // A masked text frame of 3 bytes, split inside its header and inside its payload.
        let frame = [0x81, 0x83, 1, 2, 3, 4, b'a' ^ 1, b'b' ^ 2, b'c' ^ 3];
        frames.feed(&frame[..1]);
        assert!(!frames.at_boundary());
        assert_eq!(frames.left_in_frame(), 1);
        frames.feed(&frame[1..4]);
        assert_eq!(frames.left_in_frame(), 2, "the rest of the mask");
        frames.feed(&frame[4..7]);
        assert_eq!(frames.left_in_frame(), 2, "the rest of the payload");
        frames.feed(&frame[7..]);
        assert!(frames.at_boundary());
        assert!(!frames.closed);

        // A 300-byte binary frame (16-bit length), then a close frame in the same read.
        let mut data = vec![0x82, 126, 0x01, 0x2c];
        data.extend(std::iter::repeat_n(7u8, 300));
        data.extend([0x88, 0x02, 0x03, 0xe8]);
        frames.feed(&data);
        assert!(frames.at_boundary());
        assert!(frames.closed);
    }
}
