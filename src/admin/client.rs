//! The typed client of the admin socket, shared by `collabctl` and the tests: one
//! connection, one request line and one answer line per call, typed by [`Params`].

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::protocol::{Call, ErrorBody, Outgoing, Params, Response};

/// How long an answer may take before the client gives up (an import's chunk, a rematch).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {path} (is collabd running?): {source}")]
    Connect { path: String, source: std::io::Error },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The daemon answered with an error: its code, message and field.
    #[error("{}", describe(.0))]
    Server(ErrorBody),
    #[error("collabd closed the connection")]
    Closed,
    #[error("unexpected answer from collabd: {0}")]
    Bad(String),
}

fn describe(e: &ErrorBody) -> String {
    match &e.field {
        Some(f) => format!("{} ({f}): {}", e.code, e.message),
        None => format!("{}: {}", e.code, e.message),
    }
}

impl ClientError {
    /// The daemon's error, when it answered with one.
    pub fn server(&self) -> Option<&ErrorBody> {
        match self {
            ClientError::Server(e) => Some(e),
            _ => None,
        }
    }
}

/// A connection to the daemon.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
}

impl Client {
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path)
            .map_err(|source| ClientError::Connect { path: path.display().to_string(), source })?;
        stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
        Ok(Client { reader: BufReader::new(stream.try_clone()?), writer: stream, next_id: 1 })
    }

    /// One call, answered with its typed result.
    pub fn call<P: Params>(&mut self, params: P) -> Result<P::Output, ClientError> {
        let raw = self.call_raw(params.into())?;
        serde_json::from_value(raw).map_err(|e| ClientError::Bad(e.to_string()))
    }

    /// One call, answered with the raw JSON result (for `--json`); a protocol error becomes
    /// [`ClientError::Server`].
    pub fn call_raw(&mut self, call: Call) -> Result<Value, ClientError> {
        let mut line = serde_json::to_string(&Outgoing { id: self.next_id, call: &call })
            .map_err(|e| ClientError::Bad(e.to_string()))?;
        self.next_id += 1;
        line.push('\n');
        // A refused connection is answered before the request is read: still read the
        // answer when the write fails.
        let written = self.writer.write_all(line.as_bytes());
        self.read_answer(written)
    }

    /// Waits for answers without a time limit (`watch`: events come when they come).
    pub fn wait_forever(&mut self) -> Result<(), ClientError> {
        Ok(self.writer.set_read_timeout(None)?)
    }

    /// The next answer line on the connection, for calls answered more than once
    /// (`watch`).
    pub fn next_answer(&mut self) -> Result<Value, ClientError> {
        self.read_answer(Ok(()))
    }

    /// Reads one answer line; `written` is how writing the request went (reported only when
    /// no answer comes, as a refusal is answered before the request is read).
    fn read_answer(&mut self, written: std::io::Result<()>) -> Result<Value, ClientError> {
        let mut answer = String::new();
        let read = self.reader.read_line(&mut answer);
        if answer.is_empty() {
            written?;
            read?;
            return Err(ClientError::Closed);
        }
        let resp: Response =
            serde_json::from_str(&answer).map_err(|e| ClientError::Bad(e.to_string()))?;
        match (resp.result, resp.error) {
            (_, Some(e)) => Err(ClientError::Server(e)),
            (Some(v), None) => Ok(v),
            (None, None) => Err(ClientError::Bad("empty response".into())),
        }
    }
}
