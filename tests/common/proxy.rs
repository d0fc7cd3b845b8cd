//! A TCP proxy for outage tests: put it between a client and a server, then
//! `cut()` the network (existing connections dropped, new ones accepted but
//! black-holed: nothing is forwarded, so clients see timeouts, not refusals)
//! and `restore()` it.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct ChaosProxy {
    port: u16,
    cut: Arc<watch::Sender<bool>>,
    accept: tokio::task::JoinHandle<()>,
}

impl ChaosProxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `127.0.0.1:target_port`.
    pub async fn start(target_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let target: SocketAddr = ([127, 0, 0, 1], target_port).into();
        let (cut, _) = watch::channel(false);
        let cut = Arc::new(cut);
        let state = Arc::clone(&cut);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let mut cut = state.subscribe();
                tokio::spawn(async move {
                    if *cut.borrow_and_update() {
                        // Black hole: hold the socket, say nothing, until restored.
                        let _held = client;
                        while *cut.borrow_and_update() {
                            if cut.changed().await.is_err() {
                                return;
                            }
                        }
                        return;
                    }
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = async {
                            while !*cut.borrow_and_update() {
                                if cut.changed().await.is_err() {
                                    std::future::pending::<()>().await;
                                }
                            }
                        } => {
                            let _ = client.shutdown().await;
                        }
                    }
                });
            }
        });
        Self { port, cut, accept }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Drops every forwarded connection and black-holes new ones.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Forwards new connections again (black-holed ones are closed).
    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut.send_replace(true);
    }
}
