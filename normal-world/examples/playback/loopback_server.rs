//! The reference license server (`license-server`, with the protected key system) on a
//! loopback port, serving from a thread of this process: step 9's server, and the one the
//! protected end-to-end tests (`tests/protected.rs`, `tests/protected_memory.rs`) run.

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
    /// as of `now` (seconds since the epoch), counting what it does in `metrics`.
    pub(crate) fn start(
        material_dir: &Path,
        store: Arc<SqliteStore>,
        now: u64,
        metrics: Arc<Metrics>,
    ) -> Result<LoopbackServer, String> {
        let loaded = ProtectedMaterial::load(material_dir, now, 86_400)
            .map_err(|e| format!("key material: {e}"))?;
        let service = ProtectedService::new(loaded, Arc::clone(&store) as _);
        let app =
            license_server::router_with_protected(store as _, metrics, None, Arc::new(service));
        let (stop, stopped) = mpsc::channel::<()>();
        let (ready, bound) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let served = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
                .and_then(|rt| {
                    rt.block_on(async move {
                        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                            .await
                            .map_err(|e| e.to_string())?;
                        let _ = ready.send(listener.local_addr().map_err(|e| e.to_string()));
                        let shutdown = async move {
                            let _ = tokio::task::spawn_blocking(move || stopped.recv()).await;
                        };
                        license_server::serve(listener, app, shutdown)
                            .await
                            .map_err(|e| e.to_string())
                    })
                });
            if let Err(e) = served {
                eprintln!("license server: {e}");
            }
        });
        let addr = bound
            .recv()
            .map_err(|_| "the license server did not start".to_string())??;
        Ok(LoopbackServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
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
