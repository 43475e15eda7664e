//! Request bodies a handler answered without reading to their end (an early 401, 403 or 404, an
//! upload refused before it is read). Left unread, the server would close the connection while
//! the client may still be sending, or about to send its next request on it: the client sees the
//! connection dropped. So the rest is read and dropped before the answer goes out, up to a bound
//! and a deadline; past them the answer says `Connection: close`, and the client knows.

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, header::CONNECTION};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Body as _, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::oneshot;

/// The most of an unread rest read before answering.
const DRAIN_BYTES: usize = 16 << 20;
/// The longest a client sending its rest is waited for.
const DRAIN_WITHIN: Duration = Duration::from_secs(5);

/// A request body that, dropped before its end, hands the rest back.
struct Watched {
    inner: Option<Body>,
    done: bool,
    back: Option<oneshot::Sender<Body>>,
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let Some(inner) = self.inner.as_mut() else { return Poll::Ready(None) };
        let polled = Pin::new(inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.done = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.as_ref().map(Body::size_hint).unwrap_or_default()
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let (false, Some(rest), Some(back)) = (self.done, self.inner.take(), self.back.take())
            && !rest.is_end_stream()
        {
            let _ = back.send(rest);
        }
    }
}

/// Middleware: runs the handler, then reads what it left of the request body.
pub async fn drain(req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    if body.is_end_stream() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let (back, rest) = oneshot::channel();
    let watched = Body::new(Watched { inner: Some(body), done: false, back: Some(back) });
    let mut response = next.run(Request::from_parts(parts, watched)).await;
    if let Ok(rest) = rest.await
        && !read_to_end(rest).await
    {
        response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Reads and drops a body to its end; false when it is longer than the bound, slower than the
/// deadline, or broken.
async fn read_to_end(mut body: Body) -> bool {
    let read = async {
        let mut seen = 0usize;
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            let Ok(frame) = frame else { return false };
            seen = seen.saturating_add(frame.data_ref().map_or(0, Bytes::len));
            if seen > DRAIN_BYTES {
                return false;
            }
        }
        true
    };
    tokio::time::timeout(DRAIN_WITHIN, read).await.unwrap_or(false)
}
