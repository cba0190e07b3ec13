//! The TCP relay of a local testnet.
//!
//! Every connection from node `i` to node `j` goes through a [`Route`] `i → j`: node `i` dials the
//! route's `listen` address, and the relay dials node `j`'s real address (`target`) and copies bytes
//! both ways. Because the relay carries every byte, it can cut and delay links without root:
//!
//! - **partition**: while a route is cut ([`Faults::cuts`]), its open connections are closed at once
//!   (both sides) and new ones are accepted and closed immediately; when healed, new connections
//!   go through again (closed ones are not revived: the nodes redial);
//! - **delay**: each chunk read from one side is written to the other `delay_ms` later, in order.
//!
//! [`run_relay`] takes the faults from a [`watch`] channel; [`run_relay_from_dir`] is the front end
//! for a separate relay process, driven by files: `relay.json` (the routes) and `faults.json`
//! (rewritten by the test harness with [`write_faults`]).
//!
//! Everything here must run on a Tokio runtime.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// The routes file in a relay directory: a JSON array of [`Route`]s.
pub const ROUTES_FILE: &str = "relay.json";
/// The faults file in a relay directory: one [`Faults`] object; absent means no faults.
pub const FAULTS_FILE: &str = "faults.json";
/// How often [`run_relay_from_dir`] rereads the faults file.
pub const FAULTS_POLL: Duration = Duration::from_millis(100);
/// Delays are capped at an hour: anything longer is a mistake, and the cap keeps deadline
/// arithmetic from overflowing.
pub const MAX_DELAY_MS: u64 = 3_600_000;

/// Bytes read at once from one side of a connection; each chunk is delayed as a unit.
const CHUNK: usize = 16 * 1024;
/// Chunks in flight per direction. Bounded so that a slow or delayed side pushes back on the
/// sender instead of growing memory.
const QUEUE: usize = 256;

/// One directed link: node `from` reaches node `to` by dialling `listen`, which forwards to
/// `target`, node `to`'s real listen address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub from: usize,
    pub to: usize,
    pub listen: SocketAddr,
    pub target: SocketAddr,
}

/// The faults applied to every route. The default is none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Groups of node indices. `None`: no partition. `Some(groups)`: a route `i → j` (`i != j`) is
    /// open only if some group names both `i` and `j`; a node named in no group is thus cut off
    /// from everyone (a group of its own), and `Some(vec![])` isolates every node.
    pub partition: Option<Vec<Vec<usize>>>,
    /// One-way delay added to each chunk forwarded, in milliseconds (capped at [`MAX_DELAY_MS`]).
    pub delay_ms: u64,
}

impl Faults {
    /// Whether the route `from → to` is cut by the partition.
    pub fn cuts(&self, from: usize, to: usize) -> bool {
        match &self.partition {
            None => false,
            Some(_) if from == to => false,
            Some(groups) => !groups
                .iter()
                .any(|group| group.contains(&from) && group.contains(&to)),
        }
    }

    fn delay(&self) -> Duration {
        Duration::from_millis(self.delay_ms.min(MAX_DELAY_MS))
    }
}

/// Binds every route's `listen` address, then relays until `shutdown` completes. Fails only if a
/// listener cannot be bound. When it returns, every listener and connection is closed.
pub async fn run_relay(
    routes: Vec<Route>,
    faults: watch::Receiver<Faults>,
    shutdown: impl Future,
) -> anyhow::Result<()> {
    let mut bound = Vec::with_capacity(routes.len());
    for route in routes {
        let listener = TcpListener::bind(route.listen).await.with_context(|| {
            format!(
                "binding route {} -> {} on {}",
                route.from, route.to, route.listen
            )
        })?;
        bound.push((route, listener));
    }
    serve(bound, faults, shutdown).await;
    Ok(())
}

/// Like [`run_relay`], on listeners the caller has already bound (a route's `listen` field is then
/// only used in logs). Binding first lets a caller take free ports from `127.0.0.1:0` without the
/// race of dropping and rebinding them.
pub async fn run_relay_on(
    listeners: Vec<(Route, std::net::TcpListener)>,
    faults: watch::Receiver<Faults>,
    shutdown: impl Future,
) -> anyhow::Result<()> {
    let mut bound = Vec::with_capacity(listeners.len());
    for (route, listener) in listeners {
        listener.set_nonblocking(true)?;
        bound.push((route, TcpListener::from_std(listener)?));
    }
    serve(bound, faults, shutdown).await;
    Ok(())
}

async fn serve(
    listeners: Vec<(Route, TcpListener)>,
    faults: watch::Receiver<Faults>,
    shutdown: impl Future,
) {
    // Dropping this set at the end aborts the route tasks, whose own sets abort their connections.
    let mut routes = JoinSet::new();
    for (route, listener) in listeners {
        info!(from = route.from, to = route.to, listen = %route.listen, target = %route.target, "relay route up");
        routes.spawn(serve_route(route, listener, faults.clone()));
    }
    shutdown.await;
    routes.shutdown().await;
}

async fn serve_route(route: Route, listener: TcpListener, faults: watch::Receiver<Faults>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if faults.borrow().cuts(route.from, route.to) {
                        debug!(from = route.from, to = route.to, %peer, "route cut: closing new connection");
                        drop(stream);
                        continue;
                    }
                    connections.spawn(serve_connection(route, stream, faults.clone()));
                }
                Err(error) => {
                    // Usually out of file descriptors: wait rather than spin.
                    warn!(from = route.from, to = route.to, %error, "relay accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(route: Route, inbound: TcpStream, faults: watch::Receiver<Faults>) {
    let result = tokio::select! {
        // The cut first: a connection accepted just as its route is cut never dials the target.
        biased;
        () = until_cut(faults.clone(), route) => {
            debug!(from = route.from, to = route.to, "route cut: closing open connection");
            Ok(())
        }
        result = forward(inbound, route.target, faults) => result,
    };
    if let Err(error) = result {
        debug!(from = route.from, to = route.to, %error, "relay connection ended");
    }
}

/// Completes once the faults cut `route`; never completes if the faults can no longer change.
async fn until_cut(mut faults: watch::Receiver<Faults>, route: Route) {
    loop {
        if faults.borrow_and_update().cuts(route.from, route.to) {
            return;
        }
        if faults.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

async fn forward(
    inbound: TcpStream,
    target: SocketAddr,
    faults: watch::Receiver<Faults>,
) -> io::Result<()> {
    let outbound = TcpStream::connect(target).await?;
    // libp2p's small frames would otherwise wait on Nagle and blur the delays under test.
    inbound.set_nodelay(true)?;
    outbound.set_nodelay(true)?;
    let (inbound_read, inbound_write) = inbound.into_split();
    let (outbound_read, outbound_write) = outbound.into_split();
    tokio::try_join!(
        pipe(inbound_read, outbound_write, faults.clone()),
        pipe(outbound_read, inbound_write, faults),
    )?;
    Ok(())
}

/// Copies one direction: the reader stamps each chunk with its due time, the writer sends chunks in
/// order once due. An end of stream is passed on as a half-close once everything before it is sent.
async fn pipe(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    faults: watch::Receiver<Faults>,
) -> io::Result<()> {
    let (queue, mut due) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUE);
    let read = async move {
        let mut buffer = vec![0; CHUNK];
        loop {
            let read = from.read(&mut buffer).await?;
            if read == 0 {
                // Dropping the queue tells the writer the stream has ended.
                drop(queue);
                return Ok::<_, io::Error>(());
            }
            let deadline = Instant::now() + faults.borrow().delay();
            if queue
                .send((deadline, buffer[..read].to_vec()))
                .await
                .is_err()
            {
                return Ok(());
            }
        }
    };
    let write = async move {
        while let Some((deadline, chunk)) = due.recv().await {
            // A timer rounds up to the next millisecond even when already due: without a delay
            // the chunk goes at once, so that a fault-free relay adds no latency.
            if deadline > Instant::now() {
                tokio::time::sleep_until(deadline).await;
            }
            to.write_all(&chunk).await?;
        }
        to.shutdown().await
    };
    tokio::try_join!(read, write)?;
    Ok(())
}

/// Runs the relay of a directory: routes from `dir/relay.json`, faults from `dir/faults.json`,
/// reread every [`FAULTS_POLL`]. An absent faults file means no faults; an unreadable or invalid
/// one is logged and the previous faults stay in force. Fails only if the routes cannot be read or
/// bound.
pub async fn run_relay_from_dir(dir: &Path, shutdown: impl Future) -> anyhow::Result<()> {
    let routes = read_routes(dir)?;
    let mut faults_file = FaultsFile::new(dir.join(FAULTS_FILE));
    let (sender, receiver) = watch::channel(faults_file.poll().unwrap_or_default());
    tokio::select! {
        result = run_relay(routes, receiver, shutdown) => result,
        never = watch_faults(faults_file, sender) => match never {},
    }
}

async fn watch_faults(mut file: FaultsFile, sender: watch::Sender<Faults>) -> Infallible {
    let mut ticks = tokio::time::interval(FAULTS_POLL);
    loop {
        ticks.tick().await;
        if let Some(faults) = file.poll() {
            info!(?faults, "relay faults changed");
            sender.send_if_modified(|current| {
                let changed = *current != faults;
                *current = faults;
                changed
            });
        }
    }
}

/// Reads the routes of a relay directory (`dir/relay.json`).
pub fn read_routes(dir: &Path) -> anyhow::Result<Vec<Route>> {
    let path = dir.join(ROUTES_FILE);
    let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Writes the routes of a relay directory (`dir/relay.json`), atomically.
pub fn write_routes(dir: &Path, routes: &[Route]) -> anyhow::Result<()> {
    write_atomically(&dir.join(ROUTES_FILE), &serde_json::to_vec_pretty(routes)?)
}

/// Writes the faults of a relay directory (`dir/faults.json`), atomically, so that the relay never
/// reads half a file.
pub fn write_faults(dir: &Path, faults: &Faults) -> anyhow::Result<()> {
    write_atomically(&dir.join(FAULTS_FILE), &serde_json::to_vec_pretty(faults)?)
}

fn write_atomically(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    // A name unique to this process and call, in the same directory so the rename is atomic.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .context("a relay file path has a file name")?
        .to_string_lossy();
    let temporary = path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&temporary, contents)
        .with_context(|| format!("writing {}", temporary.display()))?;
    if let Err(error) = std::fs::rename(&temporary, path) {
        let _ = std::fs::remove_file(&temporary);
        return Err(error)
            .with_context(|| format!("renaming {} to {}", temporary.display(), path.display()));
    }
    Ok(())
}

/// The faults file as last read, compared by content: rewrites within one mtime tick are not missed.
struct FaultsFile {
    path: PathBuf,
    /// `None` until first read; `Some(None)` while the file is absent.
    last: Option<Option<Vec<u8>>>,
}

impl FaultsFile {
    fn new(path: PathBuf) -> Self {
        Self { path, last: None }
    }

    /// The new faults if the file changed to something valid since the last call. Reads with
    /// blocking I/O: a small local file, read in well under a millisecond.
    fn poll(&mut self) -> Option<Faults> {
        let contents = match std::fs::read(&self.path) {
            Ok(contents) => Some(contents),
            Err(error) if error.kind() == io::ErrorKind::NotFound => None,
            Err(error) => {
                // Transient (e.g. permissions being fixed): keep the faults, retry next poll.
                warn!(path = %self.path.display(), %error, "cannot read relay faults; keeping the previous ones");
                return None;
            }
        };
        if self.last.as_ref() == Some(&contents) {
            return None;
        }
        let faults = match &contents {
            None => Some(Faults::default()),
            Some(bytes) => match serde_json::from_slice(bytes) {
                Ok(faults) => Some(faults),
                Err(error) => {
                    warn!(path = %self.path.display(), %error, "invalid relay faults; keeping the previous ones");
                    None
                }
            },
        };
        // Remembered even when invalid, so a bad file is reported once, not every poll.
        self.last = Some(contents);
        faults
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;
    use tokio::time::timeout;

    const ROUTE_FROM: usize = 0;
    const ROUTE_TO: usize = 1;

    /// An echo server on a free port; each connection it sees end is reported on the receiver.
    async fn echo_server() -> (SocketAddr, mpsc::UnboundedReceiver<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (ended, ends) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let ended = ended.clone();
                tokio::spawn(async move {
                    let (mut read, mut write) = stream.into_split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                    let _ = write.shutdown().await;
                    let _ = ended.send(());
                });
            }
        });
        (address, ends)
    }

    struct Relay {
        address: SocketAddr,
        faults: watch::Sender<Faults>,
        stop: Option<oneshot::Sender<()>>,
        task: tokio::task::JoinHandle<anyhow::Result<()>>,
    }

    /// A relay with one route `0 → 1` to `target`, on a port bound here.
    fn start_relay(target: SocketAddr, faults: Faults) -> Relay {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let route = Route {
            from: ROUTE_FROM,
            to: ROUTE_TO,
            listen: address,
            target,
        };
        let (faults, receiver) = watch::channel(faults);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run_relay_on(vec![(route, listener)], receiver, stopped));
        Relay {
            address,
            faults,
            stop: Some(stop),
            task,
        }
    }

    async fn round_trip(stream: &mut TcpStream, message: &[u8]) -> io::Result<Vec<u8>> {
        stream.write_all(message).await?;
        let mut echoed = vec![0; message.len()];
        stream.read_exact(&mut echoed).await?;
        Ok(echoed)
    }

    /// Whether the peer closes (end of stream or reset) within `within`, without sending data.
    async fn closes_within(stream: &mut TcpStream, within: Duration) -> bool {
        let mut buffer = [0; 64];
        matches!(
            timeout(within, stream.read(&mut buffer)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    /// A connection through a cut route is closed at once: nothing comes back.
    async fn refused(address: SocketAddr) -> bool {
        match TcpStream::connect(address).await {
            Err(_) => true,
            Ok(mut stream) => {
                let _ = stream.write_all(b"ping").await;
                closes_within(&mut stream, Duration::from_secs(1)).await
            }
        }
    }

    async fn echoes(address: SocketAddr) -> bool {
        let Ok(mut stream) = TcpStream::connect(address).await else {
            return false;
        };
        let echoed = timeout(Duration::from_secs(2), round_trip(&mut stream, b"ping")).await;
        matches!(echoed, Ok(Ok(bytes)) if bytes == b"ping")
    }

    // The partition rule: open within a group, cut across groups, unnamed nodes isolated.
    #[test]
    fn partition_rule() {
        let none = Faults::default();
        assert!(!none.cuts(0, 1));
        let split = Faults {
            partition: Some(vec![vec![0, 1], vec![2]]),
            delay_ms: 0,
        };
        assert!(!split.cuts(0, 1) && !split.cuts(1, 0));
        assert!(split.cuts(0, 2) && split.cuts(2, 1));
        assert!(
            split.cuts(0, 3) && split.cuts(3, 2),
            "unnamed node 3 is isolated"
        );
        assert!(!split.cuts(3, 3));
        let everyone_alone = Faults {
            partition: Some(vec![]),
            delay_ms: 0,
        };
        assert!(everyone_alone.cuts(0, 1));
    }

    // A megabyte goes to an echo server and back intact and in order, and a half-close passes both ways.
    #[tokio::test]
    async fn bytes_flow_both_ways() {
        let (target, _) = echo_server().await;
        let relay = start_relay(target, Faults::default());
        let stream = TcpStream::connect(relay.address).await.unwrap();
        let (mut read, mut write) = stream.into_split();
        let sent: Vec<u8> = (0..1_048_576u32).map(|i| (i % 251) as u8).collect();
        let to_send = sent.clone();
        let writer = tokio::spawn(async move {
            write.write_all(&to_send).await.unwrap();
            write.shutdown().await.unwrap();
        });
        let mut received = Vec::new();
        // Reading to the end only finishes if the echo server's half-close came back through the relay.
        timeout(Duration::from_secs(10), read.read_to_end(&mut received))
            .await
            .expect("the echoed stream ends")
            .unwrap();
        writer.await.unwrap();
        assert_eq!(received.len(), sent.len());
        assert!(received == sent, "echoed bytes differ from those sent");
    }

    // A partition closes an open connection on both sides and refuses new ones; healing lets new ones through.
    #[tokio::test]
    async fn partition_cuts_and_heal_restores() {
        let (target, mut ends) = echo_server().await;
        let relay = start_relay(target, Faults::default());
        let mut open = TcpStream::connect(relay.address).await.unwrap();
        assert_eq!(round_trip(&mut open, b"hello").await.unwrap(), b"hello");

        relay.faults.send_replace(Faults {
            partition: Some(vec![vec![ROUTE_FROM], vec![ROUTE_TO]]),
            delay_ms: 0,
        });
        assert!(
            closes_within(&mut open, Duration::from_secs(1)).await,
            "the dialling side sees the cut"
        );
        let target_side_closed = timeout(Duration::from_secs(1), ends.recv()).await;
        assert!(
            matches!(target_side_closed, Ok(Some(()))),
            "the target side sees the cut"
        );
        assert!(
            refused(relay.address).await,
            "new connections are refused while cut"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            ends.try_recv().is_err(),
            "a refused connection never reaches the target"
        );

        relay.faults.send_replace(Faults::default());
        assert!(
            echoes(relay.address).await,
            "a new connection goes through once healed"
        );
    }

    // A one-way delay of 200 ms makes a round trip through the relay take at least 400 ms.
    #[tokio::test]
    async fn delay_is_applied_each_way() {
        let (target, _) = echo_server().await;
        let relay = start_relay(target, Faults::default());
        let mut stream = TcpStream::connect(relay.address).await.unwrap();
        assert_eq!(round_trip(&mut stream, b"warm").await.unwrap(), b"warm");

        // Set on an open connection: the delay applies to each chunk, not once per connection.
        relay.faults.send_replace(Faults {
            partition: None,
            delay_ms: 200,
        });
        let start = std::time::Instant::now();
        assert_eq!(round_trip(&mut stream, b"slow").await.unwrap(), b"slow");
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(400),
            "round trip took {elapsed:?}"
        );
    }

    // Delayed chunks come out in the order they went in.
    #[tokio::test]
    async fn delayed_chunks_keep_their_order() {
        let (target, _) = echo_server().await;
        let relay = start_relay(
            target,
            Faults {
                partition: None,
                delay_ms: 50,
            },
        );
        let stream = TcpStream::connect(relay.address).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (mut read, mut write) = stream.into_split();
        let mut sent = Vec::new();
        for i in 0..200u32 {
            let message = i.to_be_bytes();
            write.write_all(&message).await.unwrap();
            sent.extend_from_slice(&message);
            if i % 20 == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        write.shutdown().await.unwrap();
        let mut received = Vec::new();
        timeout(Duration::from_secs(10), read.read_to_end(&mut received))
            .await
            .expect("the echoed stream ends")
            .unwrap();
        assert!(received == sent, "echoed bytes differ from those sent");
    }

    // Shutting the relay down closes its open connections and its listeners.
    #[tokio::test]
    async fn shutdown_closes_everything() {
        let (target, _) = echo_server().await;
        let mut relay = start_relay(target, Faults::default());
        let mut open = TcpStream::connect(relay.address).await.unwrap();
        assert_eq!(round_trip(&mut open, b"hello").await.unwrap(), b"hello");

        relay.stop.take().unwrap().send(()).unwrap();
        timeout(Duration::from_secs(1), &mut relay.task)
            .await
            .expect("the relay stops")
            .unwrap()
            .unwrap();
        assert!(closes_within(&mut open, Duration::from_secs(1)).await);
        assert!(TcpStream::connect(relay.address).await.is_err());
    }

    /// Waits up to two seconds for `check` to hold, retrying every 50 ms.
    async fn eventually<F: Future<Output = bool>>(mut check: impl FnMut() -> F) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        loop {
            if check().await {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // Faults written to the directory take effect; a garbage faults file keeps the previous faults;
    // removing the file clears them.
    #[tokio::test]
    async fn faults_file_drives_the_relay() {
        let (target, _) = echo_server().await;
        let dir = tempfile::tempdir().unwrap();
        // run_relay_from_dir binds by address: take a free port, then release it for the relay.
        let listen = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let route = Route {
            from: ROUTE_FROM,
            to: ROUTE_TO,
            listen,
            target,
        };
        write_routes(dir.path(), &[route]).unwrap();
        assert_eq!(read_routes(dir.path()).unwrap(), vec![route]);
        let (stop, stopped) = oneshot::channel::<()>();
        let path = dir.path().to_owned();
        let task = tokio::spawn(async move { run_relay_from_dir(&path, stopped).await });

        assert!(
            eventually(|| echoes(listen)).await,
            "no faults file: the route is open"
        );

        write_faults(
            dir.path(),
            &Faults {
                partition: Some(vec![vec![ROUTE_FROM], vec![ROUTE_TO]]),
                delay_ms: 0,
            },
        )
        .unwrap();
        assert!(
            eventually(|| refused(listen)).await,
            "the partition is picked up"
        );

        std::fs::write(dir.path().join(FAULTS_FILE), b"{\"partition\": [[0, 1]").unwrap();
        // Several polls pass; the route must stay cut.
        tokio::time::sleep(FAULTS_POLL * 4).await;
        assert!(refused(listen).await, "garbage keeps the previous faults");

        std::fs::remove_file(dir.path().join(FAULTS_FILE)).unwrap();
        assert!(
            eventually(|| echoes(listen)).await,
            "removing the file heals"
        );

        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
    }

    // A missing or invalid routes file is an error, not a panic.
    #[tokio::test]
    async fn bad_routes_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            run_relay_from_dir(dir.path(), std::future::ready(()))
                .await
                .is_err()
        );
        std::fs::write(dir.path().join(ROUTES_FILE), b"[{\"from\": 0}]").unwrap();
        assert!(
            run_relay_from_dir(dir.path(), std::future::ready(()))
                .await
                .is_err()
        );
    }

    // Unknown fields in a faults file are rejected rather than silently ignored.
    #[test]
    fn faults_reject_unknown_fields() {
        assert!(serde_json::from_str::<Faults>(r#"{"partitions": [[0]]}"#).is_err());
        assert_eq!(
            serde_json::from_str::<Faults>("{}").unwrap(),
            Faults::default()
        );
    }
}
