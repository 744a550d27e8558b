//! [`ReplayBody`]: which request bodies the layer may send twice; and the
//! [`Recorder`] that makes a streaming body (tonic's) replayable when all of
//! it was already in memory.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::{BoxBody, UnsyncBoxBody};
use http_body_util::{Empty, Full};

/// How many bytes of a streaming request body the layer keeps by default to
/// send it again: 64 KiB. A longer body is not retried.
pub const DEFAULT_REPLAY_LIMIT: usize = 64 * 1024;

/// A request body that can be sent again: what [`AuthService`](crate::AuthService)
/// needs to retry a request once after its token was refused.
///
/// A body held in memory replays ([`Full`], [`Empty`], `String`): it is
/// copied before the request is sent. A streaming one cannot ([`BoxBody`],
/// [`UnsyncBoxBody`]) and such a request is never retried: the refused token
/// is still invalidated, the response goes back to the caller, and the next
/// request carries a fresh token. Implement it for your own body type when
/// it can be copied.
///
/// tonic's body is a stream too, but a unary (or server-streaming) call's
/// stream is one message already in memory. It is [recorded](Self::record)
/// as it is sent: when the token is refused and every byte of it was
/// already at hand (within the layer's limit, 64 KiB by default:
/// [`AuthLayer::with_replay_limit`](crate::AuthLayer::with_replay_limit)),
/// the recording is sent again. A call whose request stream is longer, or
/// still waiting for messages (client-streaming and bidirectional calls), is
/// not retried.
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use tokensmith_tower::ReplayBody;
///
/// let body = Full::new(Bytes::from_static(b"{}"));
/// assert!(body.try_replay().is_some());
/// ```
pub trait ReplayBody: Sized {
    /// A copy to send again, or `None` when the body cannot be copied
    /// before it is sent.
    fn try_replay(&self) -> Option<Self>;

    /// For a body [`try_replay`](Self::try_replay) cannot copy: the body to
    /// send in its place, which records what it sends (at most `limit`
    /// bytes), and the [`Recorder`] that gives the recording back as a body
    /// if the request has to be sent again. The default records nothing:
    /// the request is never retried.
    ///
    /// A body of [`Bytes`] frames implements it with [`Recorder::new`].
    fn record(self, limit: usize) -> (Self, Option<Recorder<Self>>) {
        let _ = limit;
        (self, None)
    }
}

impl<D: Clone> ReplayBody for Full<D> {
    fn try_replay(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl<D: bytes::Buf> ReplayBody for Empty<D> {
    fn try_replay(&self) -> Option<Self> {
        Some(Empty::new())
    }
}

impl ReplayBody for String {
    fn try_replay(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl<D, E> ReplayBody for BoxBody<D, E> {
    fn try_replay(&self) -> Option<Self> {
        None
    }
}

impl<D, E> ReplayBody for UnsyncBoxBody<D, E> {
    fn try_replay(&self) -> Option<Self> {
        None
    }
}

/// tonic's request body: an ended one is copied; any other is recorded as
/// it is sent, and replayed when all of it was in memory within the limit.
#[cfg(feature = "tonic")]
impl ReplayBody for tonic::body::Body {
    fn try_replay(&self) -> Option<Self> {
        self.is_end_stream().then(tonic::body::Body::empty)
    }

    fn record(self, limit: usize) -> (Self, Option<Recorder<Self>>) {
        let (sending, recorder) = Recorder::new(self, limit, tonic::body::Body::new::<Replay>);
        (tonic::body::Body::new(sending), Some(recorder))
    }
}

/// Records a streaming request body while it is sent, so that a request
/// refused for its token can be sent once more: what
/// [`ReplayBody::record`] returns.
///
/// [`Recorder::new`] wraps the body in a [`Recording`], which yields exactly
/// what the body yields and keeps a copy of each frame (a reference-counted
/// [`Bytes`]: no copy of the data) up to a limit; past it the copy is
/// dropped and the body will not be replayed. [`replay`](Self::replay)
/// gives the recording back as a [`Replay`] body, when the whole body was
/// recorded. Dropping the recorder stops the recording.
pub struct Recorder<B> {
    tape: Arc<dyn Rewind<B>>,
}

impl<B> Recorder<B>
where
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Send,
{
    /// Starts recording `body`: the body to send in its place, and the
    /// recorder. At most `limit` bytes of data are kept; `rebuild` turns the
    /// recording into a `B` again (`tonic::body::Body::new`, for tonic).
    pub fn new(body: B, limit: usize, rebuild: fn(Replay) -> B) -> (Recording<B>, Self) {
        let tape = Arc::new(Tape {
            limit,
            rebuild,
            state: Mutex::new(State {
                body,
                done: false,
                kept: Some(Kept::default()),
                pulled: VecDeque::new(),
                sender: None,
                sender_gone: false,
            }),
        });
        (Recording { tape: tape.clone() }, Self { tape })
    }
}

impl<B> Recorder<B> {
    /// The body to send again: the recording, when the whole body was
    /// recorded within the limit. What the sender has not read yet is read
    /// here first, but only what is ready at once: a body still waiting for
    /// data (a stream of messages yet to come) gives `None`, as does one
    /// longer than the limit or one that failed.
    pub fn replay(self) -> Option<B> {
        self.tape.replay()
    }
}

impl<B> Drop for Recorder<B> {
    fn drop(&mut self) {
        self.tape.stop();
    }
}

impl<B> fmt::Debug for Recorder<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // What a request body holds is the caller's: only its size.
        f.debug_struct("Recorder").field("recorded_bytes", &self.tape.recorded()).finish()
    }
}

/// The body a [`Recorder`] sends in place of the original: it yields what
/// the original yields, and records it.
pub struct Recording<B: Body> {
    tape: Arc<Tape<B>>,
}

impl<B: Body> fmt::Debug for Recording<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recording").finish_non_exhaustive()
    }
}

impl<B> Body for Recording<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let mut state = self.tape.lock();
        // Frames the recorder read ahead (after a refusal) come first.
        if let Some(frame) = state.pulled.pop_front() {
            return Poll::Ready(Some(frame));
        }
        if state.done {
            return Poll::Ready(None);
        }
        if !state.sender.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            state.sender = Some(cx.waker().clone());
        }
        let polled = Pin::new(&mut state.body).poll_frame(cx);
        state.note(&polled, self.tape.limit);
        polled
    }

    fn is_end_stream(&self) -> bool {
        let mut state = self.tape.lock();
        if !state.done && state.body.is_end_stream() {
            state.done = true;
        }
        state.done && state.pulled.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        let state = self.tape.lock();
        match (state.done, state.pulled.is_empty()) {
            (true, true) => SizeHint::with_exact(0),
            (false, true) => state.body.size_hint(),
            _ => SizeHint::default(),
        }
    }
}

impl<B: Body> Drop for Recording<B> {
    fn drop(&mut self) {
        let mut state = self.tape.lock();
        state.sender_gone = true;
        state.sender = None;
        state.pulled.clear();
    }
}

/// A recorded request body, sent again: the data frames, then the trailers.
pub struct Replay {
    data: VecDeque<Bytes>,
    trailers: Option<HeaderMap>,
}

impl fmt::Debug for Replay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replay")
            .field("bytes", &self.data.iter().map(Bytes::len).sum::<usize>())
            .field("trailers", &self.trailers.is_some())
            .finish()
    }
}

impl Body for Replay {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let frame = match self.data.pop_front() {
            Some(data) => Some(Frame::data(data)),
            None => self.trailers.take().map(Frame::trailers),
        };
        Poll::Ready(frame.map(Ok))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_empty() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        let len = self.data.iter().map(Bytes::len).sum::<usize>();
        SizeHint::with_exact(u64::try_from(len).unwrap_or(u64::MAX))
    }
}

/// What the recorder and the recording share.
struct Tape<B: Body> {
    limit: usize,
    rebuild: fn(Replay) -> B,
    state: Mutex<State<B>>,
}

struct State<B: Body> {
    /// The original body, read by the sender (or, after a refusal, by the
    /// recorder for what is ready at once).
    body: B,
    /// The original body has ended.
    done: bool,
    /// What was read of it; `None` once over the limit, after an error, or
    /// when no longer wanted.
    kept: Option<Kept>,
    /// Frames the recorder read that the sender has not had yet.
    pulled: VecDeque<Result<Frame<Bytes>, B::Error>>,
    /// The sender's last waker: the recorder reads on its behalf, so the
    /// body wakes the sender when more comes.
    sender: Option<Waker>,
    /// The sender dropped its body (its request is over).
    sender_gone: bool,
}

#[derive(Default)]
struct Kept {
    data: Vec<Bytes>,
    len: usize,
    trailers: Option<HeaderMap>,
}

impl<B: Body<Data = Bytes>> State<B> {
    /// Records what a read of the original body gave.
    fn note(&mut self, polled: &Poll<Option<Result<Frame<Bytes>, B::Error>>>, limit: usize) {
        match polled {
            Poll::Pending => {}
            Poll::Ready(None) => self.done = true,
            Poll::Ready(Some(Err(_))) => self.kept = None,
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(kept) = &mut self.kept {
                    if let Some(data) = frame.data_ref() {
                        kept.len = kept.len.saturating_add(data.len());
                        if kept.len > limit {
                            self.kept = None;
                        } else if !data.is_empty() {
                            kept.data.push(data.clone());
                        }
                    } else if let Some(trailers) = frame.trailers_ref() {
                        kept.trailers = Some(trailers.clone());
                    }
                }
                if self.body.is_end_stream() {
                    self.done = true;
                }
            }
        }
    }
}

impl<B: Body> Tape<B> {
    fn lock(&self) -> MutexGuard<'_, State<B>> {
        // Every unlock leaves the state consistent: a poisoned lock is usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The recorder's side of the tape, without the body's bounds (the layer is
/// generic over any [`ReplayBody`]).
trait Rewind<B>: Send + Sync {
    fn replay(&self) -> Option<B>;
    fn stop(&self);
    fn recorded(&self) -> usize;
}

impl<B> Rewind<B> for Tape<B>
where
    B: Body<Data = Bytes> + Unpin + Send,
    B::Error: Send,
{
    fn replay(&self) -> Option<B> {
        let mut state = self.lock();
        // Read what the sender has not, on its behalf: only what is ready.
        let waker = match (&state.sender, state.sender_gone) {
            (Some(waker), false) => waker.clone(),
            _ => Waker::noop().clone(),
        };
        let mut cx = Context::from_waker(&waker);
        while !state.done {
            state.kept.as_ref()?;
            let polled = Pin::new(&mut state.body).poll_frame(&mut cx);
            state.note(&polled, self.limit);
            match polled {
                // Still waiting for data: a stream not in memory.
                Poll::Pending => return None,
                Poll::Ready(Some(frame)) if !state.sender_gone => state.pulled.push_back(frame),
                Poll::Ready(_) => {}
            }
        }
        let kept = state.kept.take()?;
        drop(state);
        Some((self.rebuild)(Replay { data: kept.data.into(), trailers: kept.trailers }))
    }

    fn stop(&self) {
        self.lock().kept = None;
    }

    fn recorded(&self) -> usize {
        self.lock().kept.as_ref().map_or(0, |k| k.len)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;

    /// One step of a test body.
    enum Step {
        Data(&'static str),
        Trailers,
        /// Not ready: the body keeps the waker and is ready on the next poll.
        Pending,
        Fail,
    }

    /// A body of scripted steps; or, rebuilt by the recorder, its replay.
    enum Scripted {
        Steps(VecDeque<Step>, Arc<Mutex<Option<Waker>>>),
        Replayed(Replay),
    }

    fn scripted(steps: impl IntoIterator<Item = Step>) -> (Scripted, Arc<Mutex<Option<Waker>>>) {
        let parked = Arc::new(Mutex::new(None));
        (Scripted::Steps(steps.into_iter().collect(), parked.clone()), parked)
    }

    impl Body for Scripted {
        type Data = Bytes;
        type Error = &'static str;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, &'static str>>> {
            match &mut *self {
                Scripted::Replayed(replay) => {
                    Pin::new(replay).poll_frame(cx).map(|f| f.map(|f| f.map_err(|e| match e {})))
                }
                Scripted::Steps(steps, parked) => match steps.pop_front() {
                    None => Poll::Ready(None),
                    Some(Step::Data(text)) => Poll::Ready(Some(Ok(Frame::data(Bytes::from(text))))),
                    Some(Step::Trailers) => {
                        let mut trailers = HeaderMap::new();
                        trailers.insert("x-done", http::HeaderValue::from_static("1"));
                        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                    }
                    Some(Step::Fail) => Poll::Ready(Some(Err("failed"))),
                    Some(Step::Pending) => {
                        *parked.lock().unwrap() = Some(cx.waker().clone());
                        Poll::Pending
                    }
                },
            }
        }

        fn is_end_stream(&self) -> bool {
            match self {
                Scripted::Replayed(replay) => replay.is_end_stream(),
                Scripted::Steps(steps, _) => steps.is_empty(),
            }
        }

        fn size_hint(&self) -> SizeHint {
            match self {
                Scripted::Replayed(replay) => replay.size_hint(),
                Scripted::Steps(..) => SizeHint::default(),
            }
        }
    }

    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// What one poll gave, as text.
    fn poll<B: Body<Data = Bytes> + Unpin>(body: &mut B, waker: &Waker) -> String
    where
        B::Error: fmt::Display,
    {
        match Pin::new(body).poll_frame(&mut Context::from_waker(waker)) {
            Poll::Pending => "pending".into(),
            Poll::Ready(None) => "end".into(),
            Poll::Ready(Some(Err(e))) => format!("error {e}"),
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => format!("data {}", String::from_utf8_lossy(&data)),
                Err(frame) => format!("trailers {:?}", frame.into_trailers().ok()),
            },
        }
    }

    /// Every frame of a body that never waits, as text, `end` included.
    fn drain<B: Body<Data = Bytes> + Unpin>(body: &mut B) -> Vec<String>
    where
        B::Error: fmt::Display,
    {
        let mut seen = Vec::new();
        loop {
            let next = poll(body, Waker::noop());
            let end = next == "end" || next == "pending";
            seen.push(next);
            if end {
                return seen;
            }
        }
    }

    fn record(
        steps: impl IntoIterator<Item = Step>,
        limit: usize,
    ) -> (Recording<Scripted>, Recorder<Scripted>, Arc<Mutex<Option<Waker>>>) {
        let (body, parked) = scripted(steps);
        let (recording, recorder) = Recorder::new(body, limit, Scripted::Replayed);
        (recording, recorder, parked)
    }

    #[test]
    fn a_body_sent_to_its_end_within_the_limit_is_replayed_with_its_trailers() {
        let (mut sent, recorder, _) =
            record([Step::Data("ab"), Step::Data("c"), Step::Trailers], 3);
        let frames = drain(&mut sent);
        assert_eq!(frames, ["data ab", "data c", r#"trailers Some({"x-done": "1"})"#, "end"]);
        let mut replay = recorder.replay().expect("replayed");
        assert_eq!(replay.size_hint().exact(), Some(3));
        assert_eq!(drain(&mut replay), frames);
        assert!(replay.is_end_stream());
    }

    #[test]
    fn what_the_sender_has_not_read_yet_is_read_for_it_when_it_is_ready() {
        let (mut sent, recorder, _) = record([Step::Data("a"), Step::Data("b")], 10);
        assert_eq!(poll(&mut sent, Waker::noop()), "data a");
        // The refusal came before the sender read the rest: the recorder
        // reads it, and the sender still gets it, in order.
        let mut replay = recorder.replay().expect("replayed");
        assert_eq!(drain(&mut replay), ["data a", "data b", "end"]);
        assert_eq!(drain(&mut sent), ["data b", "end"]);
        assert!(sent.is_end_stream());
    }

    #[test]
    fn a_body_still_waiting_for_data_is_not_replayed_and_its_sender_still_woken() {
        let (mut sent, recorder, parked) =
            record([Step::Data("a"), Step::Pending, Step::Data("b")], 10);
        let counter = Arc::new(CountingWaker::default());
        let sender = Waker::from(counter.clone());
        assert_eq!(poll(&mut sent, &sender), "data a");
        assert!(recorder.replay().is_none());
        // The body parked the sender's waker, not another: waking it wakes
        // the sender, which goes on as if nothing had happened.
        parked.lock().unwrap().take().expect("parked").wake();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert_eq!(drain(&mut sent), ["data b", "end"]);
    }

    #[test]
    fn a_body_over_the_limit_or_failed_is_not_replayed() {
        let (mut sent, recorder, _) = record([Step::Data("ab"), Step::Data("cd")], 3);
        assert_eq!(drain(&mut sent), ["data ab", "data cd", "end"]);
        assert!(recorder.replay().is_none());

        // Over the limit in what the recorder reads for the sender.
        let (_sent, recorder, _) = record([Step::Data("ab"), Step::Data("cd")], 3);
        assert!(recorder.replay().is_none());

        let (mut sent, recorder, _) = record([Step::Data("a"), Step::Fail], 10);
        assert_eq!(drain(&mut sent)[..2], ["data a", "error failed"]);
        assert!(recorder.replay().is_none());

        let (_sent, recorder, _) = record([Step::Data("ab")], 0);
        assert!(recorder.replay().is_none());
    }

    #[test]
    fn a_body_its_sender_dropped_unread_is_read_by_the_recorder() {
        let (sent, recorder, _) = record([Step::Data("a"), Step::Trailers], 10);
        drop(sent);
        let mut replay = recorder.replay().expect("replayed");
        assert_eq!(drain(&mut replay), ["data a", r#"trailers Some({"x-done": "1"})"#, "end"]);
    }

    #[test]
    fn an_empty_body_is_replayed_empty() {
        let (mut sent, recorder, _) = record([], 10);
        assert!(sent.is_end_stream());
        assert_eq!(drain(&mut sent), ["end"]);
        let replay = recorder.replay().expect("replayed");
        assert!(replay.is_end_stream());
    }

    #[test]
    fn debug_shows_sizes_never_data() {
        let (mut sent, recorder, _) = record([Step::Data("secret-bytes")], 100);
        drain(&mut sent);
        let shown = format!("{recorder:?} {sent:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("recorded_bytes: 12"), "{shown}");
        let Some(Scripted::Replayed(replay)) = recorder.replay() else { panic!("replayed") };
        let shown = format!("{replay:?}");
        assert!(!shown.contains("secret") && shown.contains("bytes: 12"), "{shown}");
    }
}
