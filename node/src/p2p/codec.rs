//! A request-response codec for length-prefixed frames with a size limit per protocol.
//!
//! A frame is a 4-byte big-endian length and that many bytes (an encoded `varde.v1` message). The
//! length is checked against the protocol's limit before a byte of the body is read, so a peer
//! cannot make a node buffer more than the limit. An oversized frame is read as
//! [`Frame::Oversized`] rather than as an I/O error, because libp2p's request-response drops
//! inbound read errors without telling the behaviour, and the network task must see the fault to
//! cut the peer. Decoding the protobuf is left to the network task as well.

use std::io;

use bytes::Bytes;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response::Codec;

/// One frame as read from (or written to) a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Bytes(Bytes),
    /// The peer announced a frame over the limit; its body was not read.
    Oversized {
        length: usize,
        limit: usize,
    },
}

/// Size limits of one protocol's frames.
#[derive(Debug, Clone, Copy)]
pub struct FrameLimits {
    pub request_bytes_max: usize,
    pub response_bytes_max: usize,
}

#[derive(Debug, Clone, Copy)]
pub struct FrameCodec {
    limits: FrameLimits,
}

impl FrameCodec {
    pub fn new(limits: FrameLimits) -> Self {
        Self { limits }
    }
}

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, limit: usize) -> io::Result<Frame> {
    let mut length = [0u8; 4];
    io.read_exact(&mut length).await?;
    let length = u32::from_be_bytes(length) as usize;
    if length > limit {
        return Ok(Frame::Oversized { length, limit });
    }
    let mut body = vec![0u8; length];
    io.read_exact(&mut body).await?;
    Ok(Frame::Bytes(Bytes::from(body)))
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    frame: &Frame,
    limit: usize,
) -> io::Result<()> {
    let Frame::Bytes(frame) = frame else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an oversized frame is never written",
        ));
    };
    if frame.len() > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a frame of {} bytes exceeds the limit of {limit}",
                frame.len()
            ),
        ));
    }
    io.write_all(&(frame.len() as u32).to_be_bytes()).await?;
    io.write_all(frame).await?;
    io.close().await
}

impl Codec for FrameCodec {
    type Protocol = StreamProtocol;
    type Request = Frame;
    type Response = Frame;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Frame> {
        read_frame(io, self.limits.request_bytes_max).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Frame> {
        read_frame(io, self.limits.response_bytes_max).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Frame,
    ) -> io::Result<()> {
        write_frame(io, &request, self.limits.request_bytes_max).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Frame,
    ) -> io::Result<()> {
        write_frame(io, &response, self.limits.response_bytes_max).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;

    const PROTOCOL: StreamProtocol = StreamProtocol::new("/varde/test/1");

    fn codec(limit: usize) -> FrameCodec {
        FrameCodec::new(FrameLimits {
            request_bytes_max: limit,
            response_bytes_max: limit,
        })
    }

    // A frame written is read back byte for byte.
    #[tokio::test]
    async fn frames_round_trip() {
        let mut buffer = Cursor::new(Vec::new());
        codec(16)
            .write_request(
                &PROTOCOL,
                &mut buffer,
                Frame::Bytes(Bytes::from_static(b"vote")),
            )
            .await
            .unwrap();
        let mut reader = Cursor::new(buffer.into_inner());
        let frame = codec(16)
            .read_request(&PROTOCOL, &mut reader)
            .await
            .unwrap();
        assert_eq!(frame, Frame::Bytes(Bytes::from_static(b"vote")));
    }

    // A length prefix over the limit is reported without reading the body; a truncated frame is
    // an error.
    #[tokio::test]
    async fn oversized_and_truncated_frames_are_refused() {
        let mut oversized = Cursor::new([0u8, 0, 1, 0].to_vec());
        let frame = codec(255)
            .read_request(&PROTOCOL, &mut oversized)
            .await
            .unwrap();
        assert_eq!(
            frame,
            Frame::Oversized {
                length: 256,
                limit: 255
            }
        );
        let mut truncated = Cursor::new([0u8, 0, 0, 9, 1, 2].to_vec());
        let error = codec(255)
            .read_response(&PROTOCOL, &mut truncated)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }
}
