//! The control protocol between `crac_ckpt` and a launched process's agent: one JSON request and
//! one JSON reply per connection, each in a length-prefixed frame.
//!
//! A frame is a `u32` little-endian length followed by that many bytes of JSON. The length is
//! checked against the reader's limit ([`MAX_FRAME`] for requests, [`MAX_REPLY_FRAME`] for
//! replies) before anything is allocated. Every message carries
//! [`PROTOCOL_VERSION`]; the version is read first, on its own, so a peer of another version gets
//! "wrong version" rather than a confusing field error. Decoding never panics: garbage,
//! oversized, truncated and wrong-version input each give their own [`ProtocolError`].

use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::procfs::Perms;

/// Version of the messages below; bump it when a message changes incompatibly. Version 2 added
/// checkpoint requests and their replies (an agent of version 1 would call them malformed).
pub const PROTOCOL_VERSION: u32 = 2;

/// Largest request frame body, in bytes (1 MiB). Requests are read by the agent, inside the
/// program's process, so what a client may make it allocate stays small.
pub const MAX_FRAME: u32 = 1 << 20;

/// Largest reply frame body, in bytes (64 MiB). A status reply lists every mapping, about 150
/// bytes each, and a process may have `vm.max_map_count` of them (65530 by default, often raised
/// to 262144): 1 MiB held only about 7000. Replies are read by `crac_ckpt`, not the program.
pub const MAX_REPLY_FRAME: u32 = 64 << 20;

/// Why a frame or message could not be read, written or understood.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The length prefix exceeds the limit ([`MAX_FRAME`] or [`MAX_REPLY_FRAME`]).
    #[error("message of {len} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// The announced or actual length.
        len: u64,
        /// The limit it exceeds.
        limit: u32,
    },
    /// The stream ended inside a frame.
    #[error("message truncated: expected {expected} bytes, got {got}")]
    Truncated {
        /// Bytes the frame announced (4 for the length prefix itself).
        expected: usize,
        /// Bytes that arrived.
        got: usize,
    },
    /// Reading the frame failed for another reason (timeout, reset).
    #[error("reading the message failed: {0}")]
    Io(#[source] std::io::Error),
    /// The body is not a JSON object with a numeric `version`.
    #[error("message is not a crac control message: {0}")]
    Garbage(#[source] serde_json::Error),
    /// The body's `version` is not ours.
    #[error(
        "protocol version {got} is not supported (this crac speaks version {PROTOCOL_VERSION}); \
         use the crac build that launched the process"
    )]
    WrongVersion {
        /// The version the peer sent.
        got: u64,
    },
    /// The body has our version but not the fields of a known message.
    #[error("malformed message: {0}")]
    Malformed(#[source] serde_json::Error),
    /// A message could not be turned into JSON (should not happen for our types).
    #[error("could not encode a message: {0}")]
    Encode(#[source] serde_json::Error),
}

impl ProtocolError {
    /// The code sent back to the peer when this error ends a request.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::TooLarge { .. } => ErrorCode::TooLarge,
            Self::Truncated { .. } | Self::Io(_) => ErrorCode::Truncated,
            Self::Garbage(_) => ErrorCode::Garbage,
            Self::WrongVersion { .. } => ErrorCode::WrongVersion,
            Self::Malformed(_) => ErrorCode::Malformed,
            Self::Encode(_) => ErrorCode::Internal,
        }
    }
}

/// A request, sent by `crac_ckpt` to the agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Always [`PROTOCOL_VERSION`] when we send it.
    pub version: u32,
    /// What is asked.
    pub body: RequestBody,
}

/// The requests the agent knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RequestBody {
    /// Describe the process: threads and memory split by half.
    Status,
    /// Write a checkpoint image now. The reply is a [`ReplyBody::Started`] frame, zero or more
    /// [`ReplyBody::Progress`] frames (only when `progress` is asked) and then one
    /// [`ReplyBody::Checkpointed`] or [`ReplyBody::Error`] (an error may come first, without
    /// `Started`).
    Checkpoint {
        /// The directory for the image (absolute); `None`: the process's own checkpoint
        /// directory (`crac_launch --dir`, `$CRAC_DIR` or its launch directory).
        #[serde(default)]
        dir: Option<String>,
        /// Stop the program once the image is safely written.
        #[serde(default)]
        exit: bool,
        /// Send progress frames while the image is written.
        #[serde(default)]
        progress: bool,
        /// Set when the program itself asks (`crac_checkpoint()` in `crac.h`): the program's
        /// own fd number of this connection. A restart from this image gives the program, on
        /// that fd, a `Checkpointed` reply with `restarted: true`.
        #[serde(default)]
        program_fd: Option<i32>,
    },
}

impl Request {
    /// A request of the current version.
    pub fn new(body: RequestBody) -> Self {
        Self {
            version: PROTOCOL_VERSION,
            body,
        }
    }
}

/// A reply, sent by the agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// Always [`PROTOCOL_VERSION`] when we send it.
    pub version: u32,
    /// The answer.
    pub body: ReplyBody,
}

/// The answers the agent gives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ReplyBody {
    /// The answer to [`RequestBody::Status`].
    Status(StatusReport),
    /// A checkpoint has started and will write this image (the first frame of the answer to
    /// [`RequestBody::Checkpoint`]): a client whose process ends with the checkpoint-and-exit
    /// before it could send the last frame still knows where the image is.
    Started {
        /// The image's path.
        path: String,
    },
    /// How far a checkpoint has got (only when the request asked for progress).
    Progress {
        /// Bytes written so far.
        done: u64,
        /// Bytes to write in all.
        total: u64,
    },
    /// A checkpoint is written: the last frame of the answer to [`RequestBody::Checkpoint`].
    Checkpointed(CheckpointReport),
    /// The request failed; nothing was done.
    Error {
        /// What kind of failure.
        code: ErrorCode,
        /// A sentence for the user.
        message: String,
    },
}

impl Reply {
    /// A reply of the current version.
    pub fn new(body: ReplyBody) -> Self {
        Self {
            version: PROTOCOL_VERSION,
            body,
        }
    }

    /// An error reply.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(ReplyBody::Error {
            code,
            message: message.into(),
        })
    }
}

/// Kinds of failed requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request frame was over the size limit.
    TooLarge,
    /// The request ended early.
    Truncated,
    /// The request was not JSON with a version.
    Garbage,
    /// The request's protocol version is not ours.
    WrongVersion,
    /// The request had our version but unknown content.
    Malformed,
    /// The agent failed while answering.
    Internal,
    /// The request was understood but cannot be done as asked (a relative directory, …).
    BadRequest,
    /// The checkpoint failed; the program goes on running, earlier images are untouched.
    CheckpointFailed,
}

/// The result of a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointReport {
    /// The image's path.
    pub path: String,
    /// Image size, bytes.
    pub image_bytes: u64,
    /// Program memory saved, bytes.
    pub memory_bytes: u64,
    /// How long the program's threads were stopped, milliseconds.
    pub pause_ms: u64,
    /// How long writing the image took, milliseconds.
    pub write_ms: u64,
    /// `false` when the program goes on after the checkpoint; `true` in the reply that a
    /// program restarted from this image reads (see [`RequestBody::Checkpoint::program_fd`]).
    pub restarted: bool,
    /// Device (CUDA) memory saved, bytes; 0 without `--gpu` (absent from older agents' frames).
    #[serde(default)]
    pub device_bytes: u64,
    /// How long holding the program's CUDA calls and draining the device took before its
    /// threads were stopped, milliseconds (not part of `pause_ms`).
    #[serde(default)]
    pub drain_ms: u64,
    /// How long writing device memory to the image took, milliseconds (part of `write_ms`).
    #[serde(default)]
    pub device_write_ms: u64,
}

/// Which part of the process something belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Half {
    /// The program (upper half): saved in a checkpoint.
    Upper,
    /// crac itself (lower half): never saved.
    Lower,
    /// Provided by the kernel (`[vdso]`, `[vvar]`, …): neither half, never saved.
    Kernel,
}

/// A thread of the process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadInfo {
    /// Kernel thread id.
    pub tid: i32,
    /// Name from `/proc/<pid>/task/<tid>/comm`.
    pub name: String,
    /// The half the thread belongs to ([`Half::Kernel`] is never used here).
    pub half: Half,
}

/// A run of addresses belonging wholly to one half, cut out of one `maps` line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    /// First address.
    pub start: u64,
    /// First address past the end.
    pub end: u64,
    /// Permissions of the maps line it came from.
    pub perms: Perms,
    /// File offset of `start` (the line's offset moved by the cut).
    pub offset: u64,
    /// The maps line's path or pseudo-name; empty if anonymous.
    pub path: String,
    /// Whose it is.
    pub half: Half,
}

impl Region {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether it holds no byte.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The answer to a status request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// The process id.
    pub pid: i32,
    /// crac's version in the process.
    pub crac_version: String,
    /// Every thread, upper first, each group by tid.
    pub threads: Vec<ThreadInfo>,
    /// Every mapped byte exactly once, in address order.
    pub regions: Vec<Region>,
}

impl StatusReport {
    /// Bytes mapped by `half`.
    pub fn total(&self, half: Half) -> u64 {
        self.regions
            .iter()
            .filter(|r| r.half == half)
            .map(Region::len)
            .sum()
    }
}

/// Encodes `msg` as one frame: `u32` LE length, then JSON; refuses a body over `limit` bytes
/// (the peer's reading limit: [`MAX_FRAME`] for a request, [`MAX_REPLY_FRAME`] for a reply).
pub fn encode_frame<T: Serialize>(msg: &T, limit: u32) -> Result<Vec<u8>, ProtocolError> {
    let body = serde_json::to_vec(msg).map_err(ProtocolError::Encode)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&l| l <= limit)
        .ok_or(ProtocolError::TooLarge {
            len: body.len() as u64,
            limit,
        })?;
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Reads one frame's body from `r`, refusing a length over `limit` before allocating.
pub fn read_frame(r: &mut impl Read, limit: u32) -> Result<Vec<u8>, ProtocolError> {
    let mut head = [0u8; 4];
    read_full(r, &mut head)?;
    let len = u32::from_le_bytes(head);
    if len > limit {
        return Err(ProtocolError::TooLarge {
            len: u64::from(len),
            limit,
        });
    }
    let mut body = vec![0u8; len as usize];
    read_full(r, &mut body)?;
    Ok(body)
}

/// Decodes a request body, checking the version first.
pub fn decode_request(body: &[u8]) -> Result<Request, ProtocolError> {
    decode(body)
}

/// Decodes a reply body, checking the version first.
pub fn decode_reply(body: &[u8]) -> Result<Reply, ProtocolError> {
    decode(body)
}

fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ProtocolError> {
    #[derive(Deserialize)]
    struct Envelope {
        version: u64,
    }
    let env: Envelope = serde_json::from_slice(body).map_err(ProtocolError::Garbage)?;
    if env.version != u64::from(PROTOCOL_VERSION) {
        return Err(ProtocolError::WrongVersion { got: env.version });
    }
    serde_json::from_slice(body).map_err(ProtocolError::Malformed)
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<(), ProtocolError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => {
                return Err(ProtocolError::Truncated {
                    expected: buf.len(),
                    got,
                });
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ProtocolError::Io(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut v = u32::try_from(body.len()).unwrap().to_le_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    fn sample_report() -> StatusReport {
        StatusReport {
            pid: 42,
            crac_version: "0.1.0".into(),
            threads: vec![ThreadInfo {
                tid: 42,
                name: "app".into(),
                half: Half::Upper,
            }],
            regions: vec![Region {
                start: 0x1000,
                end: 0x3000,
                perms: Perms::parse("r-xp").unwrap(),
                offset: 0,
                path: "/bin/app".into(),
                half: Half::Upper,
            }],
        }
    }

    fn sample_checkpoint() -> CheckpointReport {
        CheckpointReport {
            path: "/d/app-7-0001.crac".into(),
            image_bytes: 8192,
            memory_bytes: 4096,
            pause_ms: 3,
            write_ms: 2,
            restarted: true,
            device_bytes: 0,
            drain_ms: 0,
            device_write_ms: 0,
        }
    }

    #[test]
    fn a_checkpointed_frame_without_device_fields_decodes() {
        let old = r#"{"path":"/d/a.crac","image_bytes":1,"memory_bytes":2,"pause_ms":3,"write_ms":4,"restarted":false}"#;
        let report: CheckpointReport = serde_json::from_str(old).unwrap();
        assert_eq!((report.device_bytes, report.drain_ms), (0, 0));
    }

    #[test]
    fn request_and_reply_round_trip() {
        let req = Request::new(RequestBody::Status);
        let bytes = encode_frame(&req, MAX_FRAME).unwrap();
        let body = read_frame(&mut bytes.as_slice(), MAX_FRAME).unwrap();
        assert_eq!(decode_request(&body).unwrap(), req);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"version":2,"body":{"type":"status"}}"#
        );
        // What crac.h's C client sends and parses.
        let c = br#"{"version":2,"body":{"type":"checkpoint","program_fd":5}}"#;
        assert_eq!(
            decode_request(c).unwrap().body,
            RequestBody::Checkpoint {
                dir: None,
                exit: false,
                progress: false,
                program_fd: Some(5)
            }
        );
        let done = Reply::new(ReplyBody::Checkpointed(sample_checkpoint()));
        let text = String::from_utf8(serde_json::to_vec(&done).unwrap()).unwrap();
        assert!(text.contains(r#""type":"checkpointed""#), "{text}");
        assert!(text.contains(r#""restarted":true"#), "{text}");

        for reply in [
            Reply::new(ReplyBody::Status(sample_report())),
            Reply::error(ErrorCode::Garbage, "no"),
            Reply::new(ReplyBody::Progress { done: 1, total: 2 }),
            Reply::new(ReplyBody::Started {
                path: "/d/x".into(),
            }),
            Reply::new(ReplyBody::Checkpointed(sample_checkpoint())),
            Reply::error(ErrorCode::CheckpointFailed, "disk full"),
        ] {
            let bytes = encode_frame(&reply, MAX_REPLY_FRAME).unwrap();
            let body = read_frame(&mut bytes.as_slice(), MAX_REPLY_FRAME).unwrap();
            assert_eq!(decode_reply(&body).unwrap(), reply);
        }
        assert_eq!(sample_report().total(Half::Upper), 0x2000);
        assert_eq!(sample_report().total(Half::Lower), 0);
    }

    #[test]
    fn oversized_frame_is_refused_before_reading_it() {
        let head = (MAX_FRAME + 1).to_le_bytes();
        let err = read_frame(&mut head.as_slice(), MAX_FRAME).unwrap_err();
        assert!(
            matches!(err, ProtocolError::TooLarge { len, .. } if len == u64::from(MAX_FRAME) + 1)
        );
        assert_eq!(err.code(), ErrorCode::TooLarge);
        let err = read_frame(&mut u32::MAX.to_le_bytes().as_slice(), MAX_REPLY_FRAME).unwrap_err();
        assert!(matches!(err, ProtocolError::TooLarge { .. }));
    }

    #[test]
    fn a_status_of_tens_of_thousands_of_mappings_fits_a_reply() {
        let one = sample_report().regions.remove(0);
        let report = StatusReport {
            regions: vec![one; 20_000],
            ..sample_report()
        };
        let reply = Reply::new(ReplyBody::Status(report));
        let bytes = encode_frame(&reply, MAX_REPLY_FRAME).unwrap();
        assert!(
            bytes.len() > MAX_FRAME as usize,
            "the test needs a big reply"
        );
        let body = read_frame(&mut bytes.as_slice(), MAX_REPLY_FRAME).unwrap();
        assert_eq!(decode_reply(&body).unwrap(), reply);
        let err = encode_frame(&reply, MAX_FRAME).unwrap_err();
        assert!(matches!(
            err,
            ProtocolError::TooLarge {
                limit: MAX_FRAME,
                ..
            }
        ));
    }

    #[test]
    fn truncated_frames_are_errors() {
        let err = read_frame(&mut [1u8, 0].as_slice(), MAX_FRAME).unwrap_err();
        assert!(matches!(
            err,
            ProtocolError::Truncated {
                expected: 4,
                got: 2
            }
        ));
        let mut short = frame(b"{\"version\":1}");
        short.truncate(8);
        let err = read_frame(&mut short.as_slice(), MAX_FRAME).unwrap_err();
        assert!(matches!(
            err,
            ProtocolError::Truncated {
                expected: 13,
                got: 4
            }
        ));
    }

    #[test]
    fn garbage_wrong_version_and_malformed_are_told_apart() {
        let err = decode_request(b"\x00\xffhello").unwrap_err();
        assert_eq!(err.code(), ErrorCode::Garbage);
        let err = decode_request(br#"{"body":{"type":"status"}}"#).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Garbage);
        let err = decode_request(br#"{"version":7,"body":{"type":"status"}}"#).unwrap_err();
        assert!(matches!(err, ProtocolError::WrongVersion { got: 7 }));
        assert!(err.to_string().contains("version 7 is not supported"));
        let err = decode_request(br#"{"version":2,"body":{"type":"explode"}}"#).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Malformed);
        let err = decode_request(br#"{"version":1,"body":{"type":"status"}}"#).unwrap_err();
        assert!(matches!(err, ProtocolError::WrongVersion { got: 1 }));
        let err = decode_request(br#"{"version":2}"#).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Malformed);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(body) = read_frame(&mut bytes.as_slice(), MAX_FRAME) {
                prop_assert!(body.len() + 4 <= bytes.len());
                let _ = decode_request(&body);
                let _ = decode_reply(&body);
            }
            let _ = decode_request(&bytes);
            let _ = decode_reply(&bytes);
        }

        #[test]
        fn random_json_never_panics(
            version in any::<i64>(),
            ty in "[a-z_]{0,12}",
            extra in "\\PC{0,40}",
        ) {
            let text = format!(r#"{{"version":{version},"body":{{"type":"{ty}","x":{extra:?}}}}}"#);
            let got = decode_request(text.as_bytes());
            if version == 2 && (ty == "status" || ty == "checkpoint") {
                prop_assert!(got.is_ok());
            } else {
                prop_assert!(got.is_err());
            }
        }
    }
}
