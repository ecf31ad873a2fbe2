//! The loopback client of bench/memory.sh: many idle keep-alive connections, or many sign-ins.
//!
//! - `idle_clients hold <addr> <connections> <path> <max_hold_seconds> [cookie]`: opens that many
//!   connections to `addr` (32 at a time), sends one `GET <path>` on each and reads the whole answer
//!   (it must be 200), then keeps every connection open and idle. Prints `held=N errors=E` once all are
//!   open, then waits until its standard input ends (or `max_hold_seconds` pass), closes them all,
//!   prints `closed=N` and exits (non-zero if any connection failed).
//! - `idle_clients sign-in <addr> <count> <user>`: `count` dev sign-ins (`POST /auth/dev-login`, with
//!   an `Origin` of the address) over 4 keep-alive connections; each must answer 303. Prints
//!   `signed_in=N errors=E`.
//!
//! One single-threaded runtime; bench/memory.sh pins it to the load core. Loopback addresses only.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Error = Box<dyn std::error::Error>;

/// How many connections are being opened (request sent, answer awaited) at once.
const OPENING_AT_ONCE: usize = 32;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["hold", addr, connections, path, max_hold, rest @ ..] => runtime.block_on(hold(
            addr,
            connections.parse()?,
            path,
            Duration::from_secs(max_hold.parse()?),
            rest.first().copied(),
        )),
        ["sign-in", addr, count, user] => runtime.block_on(sign_in(addr, count.parse()?, user)),
        _ => Err(
            "usage: idle_clients hold <addr> <connections> <path> <max_hold_seconds> [cookie] \
                  | idle_clients sign-in <addr> <count> <user>"
                .into(),
        ),
    }
}

fn check_loopback(addr: &str) -> Result<(), Error> {
    let parsed: std::net::SocketAddr = addr.parse()?;
    if !parsed.ip().is_loopback() {
        return Err(format!("{addr} is not a loopback address").into());
    }
    Ok(())
}

async fn hold(
    addr: &str,
    connections: usize,
    path: &str,
    max_hold: Duration,
    cookie: Option<&str>,
) -> Result<(), Error> {
    check_loopback(addr)?;
    let cookie_line = cookie.map_or_else(String::new, |c| format!("Cookie: {c}\r\n"));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{cookie_line}\r\n");
    let mut open = Vec::with_capacity(connections);
    let mut errors = 0usize;
    let mut first_error = None;
    let mut left = connections;
    while left > 0 {
        let batch = left.min(OPENING_AT_ONCE);
        left -= batch;
        let opening = (0..batch).map(|_| open_one(addr, &request));
        for result in futures_util::future::join_all(opening).await {
            match result {
                Ok(stream) => open.push(stream),
                Err(error) => {
                    errors += 1;
                    first_error.get_or_insert_with(|| error.to_string());
                }
            }
        }
    }
    println!("held={} errors={errors}", open.len());
    if let Some(error) = first_error {
        eprintln!("first error: {error}");
    }
    // Hold until the script closes our standard input (or the time is up), then close them all.
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let mut line = String::new();
    let _ = tokio::time::timeout(max_hold, stdin.read_line(&mut line)).await;
    let closed = open.len();
    drop(open);
    println!("closed={closed}");
    if errors > 0 {
        return Err(format!("{errors} connection(s) failed").into());
    }
    Ok(())
}

async fn open_one(addr: &str, request: &str) -> Result<TcpStream, Error> {
    let mut stream =
        tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr)).await??;
    stream.write_all(request.as_bytes()).await?;
    let status =
        tokio::time::timeout(Duration::from_secs(10), read_response(&mut stream)).await??;
    if status != 200 {
        return Err(format!("answered {status}, not 200").into());
    }
    Ok(stream)
}

/// Reads one response (head, then a `Content-Length` or chunked body); returns its status.
async fn read_response(stream: &mut TcpStream) -> Result<u16, Error> {
    let mut buf = Vec::with_capacity(2048);
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        read_more(stream, &mut buf).await?;
    };
    let head = std::str::from_utf8(&buf[..head_end])?.to_ascii_lowercase();
    let status: u16 = head.split(' ').nth(1).ok_or("no status line")?.parse()?;
    let header = |name: &str| {
        head.lines()
            .find_map(|line| line.strip_prefix(name).map(|v| v.trim().to_owned()))
    };
    if let Some(length) = header("content-length:") {
        let want = head_end + length.parse::<usize>()?;
        while buf.len() < want {
            read_more(stream, &mut buf).await?;
        }
    } else if header("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
        while !buf[head_end..].ends_with(b"0\r\n\r\n") {
            read_more(stream, &mut buf).await?;
        }
    }
    Ok(status)
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), Error> {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        return Err("closed before the answer was complete".into());
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

async fn sign_in(addr: &str, count: usize, user: &str) -> Result<(), Error> {
    check_loopback(addr)?;
    let body = format!("user={user}");
    let request = format!(
        "POST /auth/dev-login HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let per_connection = count.div_ceil(4);
    let runs = (0..4).map(|i| {
        let n = per_connection.min(count.saturating_sub(i * per_connection));
        let request = request.clone();
        async move {
            let mut stream = TcpStream::connect(addr).await?;
            let (mut done, mut errors) = (0usize, 0usize);
            for _ in 0..n {
                stream.write_all(request.as_bytes()).await?;
                let status =
                    tokio::time::timeout(Duration::from_secs(10), read_response(&mut stream))
                        .await??;
                if status == 303 {
                    done += 1;
                } else {
                    errors += 1;
                }
            }
            Ok::<_, Error>((done, errors))
        }
    });
    let (mut done, mut errors) = (0, 0);
    for result in futures_util::future::join_all(runs).await {
        let (d, e) = result?;
        done += d;
        errors += e;
    }
    println!("signed_in={done} errors={errors}");
    if errors > 0 {
        return Err(format!("{errors} sign-in(s) failed").into());
    }
    Ok(())
}
