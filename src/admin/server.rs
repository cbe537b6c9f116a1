//! The socket: permissions, peer credentials, framing, timeouts and a connection cap.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use nix::unistd::{Gid, Group, Uid, User};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::codec::{Framed, LinesCodec, LinesCodecError};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::methods::{AdminContext, Connection};
use super::protocol::{Call, ErrorBody, ErrorCode, MAX_LINE, Request, Response};
use crate::config::AdminSettings;

/// `watch` connections served at once.
const MAX_WATCHERS: usize = 16;

/// Connections served at once; more are told `busy` and closed.
const MAX_CONNECTIONS: usize = 512;

/// Why the socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("admin socket {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("admin socket {0} is in use by a running collabd")]
    InUse(PathBuf),
    #[error("admin group {0:?} does not exist")]
    NoGroup(String),
}

/// The listening admin socket.
pub struct AdminServer {
    listener: UnixListener,
    path: PathBuf,
    admin_gid: Option<Gid>,
    read_timeout: Duration,
    ctx: Arc<AdminContext>,
}

impl AdminServer {
    /// Binds the socket with mode 0660 (group `group` when given), replacing a stale one
    /// left by a crash but never one a live daemon is serving.
    pub async fn bind(
        settings: &AdminSettings,
        ctx: AdminContext,
    ) -> Result<AdminServer, ServerError> {
        let (path, group) = (settings.socket.as_path(), settings.group.as_deref());
        let io = |source| ServerError::Io { path: path.to_path_buf(), source };
        let admin_gid = match group {
            Some(name) => Some(
                Group::from_name(name)
                    .ok()
                    .flatten()
                    .ok_or_else(|| ServerError::NoGroup(name.to_owned()))?
                    .gid,
            ),
            None => None,
        };
        if path.exists() {
            if UnixStream::connect(path).await.is_ok() {
                return Err(ServerError::InUse(path.to_path_buf()));
            }
            warn!(path = %path.display(), "removing stale admin socket");
            std::fs::remove_file(path).map_err(io)?;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let listener = UnixListener::bind(path).map_err(io)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(io)?;
        if let Some(gid) = admin_gid {
            nix::unistd::chown(path, None, Some(gid)).map_err(|e| io(e.into()))?;
        }
        info!(path = %path.display(), "admin socket listening");
        Ok(AdminServer {
            listener,
            path: path.to_path_buf(),
            admin_gid,
            read_timeout: settings.read_timeout,
            ctx: Arc::new(ctx),
        })
    }

    /// Serves until `shutdown`, then removes the socket file.
    pub async fn serve(self, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let stream = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        warn!(error = %e, "admin accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let ctx = self.ctx.clone();
            let (admin_gid, read_timeout) = (self.admin_gid, self.read_timeout);
            let permit = slots.clone().try_acquire_owned();
            tokio::spawn(async move {
                let framed = Framed::new(stream, LinesCodec::new_with_max_length(MAX_LINE));
                let Ok(_permit) = permit else {
                    refuse(
                        framed,
                        ErrorBody::new(ErrorCode::Busy, "too many admin connections; try again"),
                    )
                    .await;
                    return;
                };
                serve_connection(framed, admin_gid, read_timeout, &ctx).await;
            });
        }
        let _ = std::fs::remove_file(&self.path);
        info!("admin socket closed");
    }
}

type Conn = Framed<UnixStream, LinesCodec>;

async fn send(framed: &mut Conn, response: Response) -> bool {
    let line = serde_json::to_string(&response).expect("responses serialise");
    framed.send(line).await.is_ok()
}

/// Answers with one error line and closes politely: the write side is shut and what the
/// client still sends is drained for a moment, so the close does not reset the connection
/// and destroy the error line before the client reads it.
async fn refuse(mut framed: Conn, error: ErrorBody) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if !send(&mut framed, Response::err(serde_json::Value::Null, error)).await {
        return;
    }
    let mut stream = framed.into_inner();
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 8192];
    let drain = async {
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(500), drain).await;
}

/// Who may use the socket: root, the daemon's own user, members of the admin group.
fn authorized(uid: u32, gid: u32, admin_gid: Option<Gid>) -> bool {
    if uid == 0 || Uid::from_raw(uid) == Uid::effective() {
        return true;
    }
    let Some(admin) = admin_gid else { return false };
    if Gid::from_raw(gid) == admin {
        return true;
    }
    let Ok(Some(user)) = User::from_uid(Uid::from_raw(uid)) else { return false };
    let Ok(name) = std::ffi::CString::new(user.name) else { return false };
    nix::unistd::getgrouplist(&name, user.gid).is_ok_and(|groups| groups.contains(&admin))
}

async fn serve_connection(
    mut framed: Conn,
    admin_gid: Option<Gid>,
    read_timeout: Duration,
    ctx: &AdminContext,
) {
    let cred = match framed.get_ref().peer_cred() {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "cannot read admin peer credentials");
            return;
        }
    };
    let (uid, gid) = (cred.uid(), cred.gid());
    if !authorized(uid, gid, admin_gid) {
        warn!(
            uid,
            gid, "admin connection refused: not root, the daemon's user or an admin group member"
        );
        refuse(
            framed,
            ErrorBody::new(ErrorCode::Forbidden, format!("uid {uid} may not use the admin socket")),
        )
        .await;
        return;
    }
    let actor = match User::from_uid(Uid::from_raw(uid)) {
        Ok(Some(u)) => format!("{}(uid {uid})", u.name),
        _ => format!("uid {uid}"),
    };
    debug!(%actor, "admin connection");
    let mut conn = Connection::default();
    loop {
        let line = match tokio::time::timeout(read_timeout, framed.next()).await {
            Err(_) => {
                let e = ErrorBody::new(
                    ErrorCode::Timeout,
                    format!("no request within {read_timeout:?}; closing"),
                );
                refuse(framed, e).await;
                return;
            }
            Ok(None) => return,
            Ok(Some(Err(LinesCodecError::MaxLineLengthExceeded))) => {
                let e = ErrorBody::new(
                    ErrorCode::TooLarge,
                    format!("request over {MAX_LINE} bytes; closing"),
                );
                refuse(framed, e).await;
                return;
            }
            Ok(Some(Err(LinesCodecError::Io(e)))) => {
                // Invalid UTF-8 arrives here too; it is answered like any bad line.
                if e.kind() == std::io::ErrorKind::InvalidData {
                    let body =
                        ErrorBody::new(ErrorCode::InvalidRequest, "request is not UTF-8 text");
                    if send(&mut framed, Response::err(serde_json::Value::Null, body)).await {
                        continue;
                    }
                }
                return;
            }
            Ok(Some(Ok(line))) => line,
        };
        if line.trim().is_empty() {
            continue;
        }
        let response = match serde_json::from_str::<Request>(&line) {
            Err(e) => Response::err(
                serde_json::Value::Null,
                ErrorBody::new(ErrorCode::InvalidRequest, format!("not a JSON request: {e}")),
            ),
            // Imports name the line and field of a NUL themselves.
            Ok(req) if holds_nul(&req.params) && !req.method.ends_with(".import") => Response::err(
                req.id,
                ErrorBody::new(ErrorCode::InvalidParams, "text must not contain NUL (U+0000)"),
            ),
            Ok(req) if req.method == "watch" => {
                match Call::parse(&req.method, req.params) {
                    Ok(_) => watch(framed, req.id, ctx).await,
                    Err(e) => {
                        let _ = send(&mut framed, Response::err(req.id, e)).await;
                    }
                }
                return;
            }
            Ok(req) => {
                let id = req.id.clone();
                match ctx.dispatch(req, &actor, &mut conn).await {
                    Ok(v) => Response::ok(id, v),
                    Err(e) => Response::err(id, e),
                }
            }
        };
        if !send(&mut framed, response).await {
            return;
        }
    }
}

/// Streams `watch` events on this connection until the client closes it (or the daemon
/// stops): LISTEN on the channels ingest and the admin methods NOTIFY at commit, and one
/// result line (with the request's id) per event. No read timeout applies: a watcher only
/// listens.
async fn watch(mut framed: Conn, id: serde_json::Value, ctx: &AdminContext) {
    use crate::store::channels;
    // Each watcher holds a database connection of its own: a few, not one per socket.
    static WATCHERS: Semaphore = Semaphore::const_new(MAX_WATCHERS);
    let Ok(_slot) = WATCHERS.try_acquire() else {
        let body = ErrorBody::new(ErrorCode::Busy, format!("{MAX_WATCHERS} watchers already"));
        let _ = send(&mut framed, Response::err(id, body)).await;
        return;
    };
    let mut listener = match sqlx::postgres::PgListener::connect_with(ctx.store.pool()).await {
        Ok(l) => l,
        Err(e) => {
            let body = ErrorBody::new(ErrorCode::Internal, format!("cannot listen: {e}"));
            let _ = send(&mut framed, Response::err(id, body)).await;
            return;
        }
    };
    if let Err(e) = listener.listen_all([channels::COLLABORATIONS, channels::UNMATCHED]).await {
        let body = ErrorBody::new(ErrorCode::Internal, format!("cannot listen: {e}"));
        let _ = send(&mut framed, Response::err(id, body)).await;
        return;
    }
    debug!("admin watch started");
    loop {
        tokio::select! {
            // Anything from the client (or its going away) ends the watch.
            _ = framed.next() => return,
            note = listener.recv() => {
                let note = match note {
                    Ok(n) => n,
                    Err(e) => {
                        let body = ErrorBody::new(ErrorCode::Internal, format!("listen failed: {e}"));
                        let _ = send(&mut framed, Response::err(id, body)).await;
                        return;
                    }
                };
                let Ok(row) = note.payload().parse::<i64>() else { continue };
                let Some(event) = ctx.watch_event(note.channel(), row).await else { continue };
                let value = serde_json::to_value(event).expect("events serialise");
                if !send(&mut framed, Response::ok(id.clone(), value)).await {
                    return;
                }
            }
        }
    }
}

/// Postgres text cannot hold NUL: such a request is refused here, with a clear error,
/// rather than failing later as an internal database error.
fn holds_nul(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(fields) => fields.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}
