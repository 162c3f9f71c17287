//! The reference license server (`license-server`, with the protected key system) of the
//! protected end-to-end tests, serving on a loopback port from a thread of the test process.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use license_server::protected::material::ProtectedMaterial;
use license_server::{Metrics, ProtectedService, SqliteStore};

/// The license server on 127.0.0.1 (any port); stopped, and its thread joined, on drop.
pub(crate) struct LoopbackServer {
    pub(crate) addr: SocketAddr,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl LoopbackServer {
    /// Serves the keys of `store` with the protected key material in `material_dir`, loaded
    /// as of `now` (seconds since the epoch).
    pub(crate) fn start(material_dir: &Path, store: Arc<SqliteStore>, now: u64) -> LoopbackServer {
        let loaded = ProtectedMaterial::load(material_dir, now, 86_400).unwrap();
        let service = ProtectedService::new(loaded, Arc::clone(&store) as _);
        let app = license_server::router_with_protected(
            store as _,
            Arc::new(Metrics::new()),
            None,
            Arc::new(service),
        );
        let (stop, stopped) = mpsc::channel::<()>();
        let (addr_tx, addr_rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let shutdown = async move {
                    let _ = tokio::task::spawn_blocking(move || stopped.recv()).await;
                };
                license_server::serve(listener, app, shutdown)
                    .await
                    .unwrap();
            });
        });
        LoopbackServer {
            addr: addr_rx.recv().expect("the license server did not start"),
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
