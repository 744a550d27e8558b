//! [`Emulator`]: one vendor's token endpoint on an ephemeral 127.0.0.1 port,
//! with counters, recorded requests, test hooks and fault injection.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher as _;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::discovery::Discovery;
use crate::fault::Fault;
use crate::recorded::RecordedRequest;
use crate::server::{self, BasicEncoding, RequestLog};
use crate::vendor::Vendor;

/// A running emulator of one vendor's token endpoint on `127.0.0.1`.
///
/// It stops when dropped (or with [`shutdown`](Emulator::shutdown)). All
/// setters take `&self` and apply to the next request, so a test can change
/// the emulator's behaviour between two calls of the code under test.
///
/// ```
/// use tokensmith_testkit::{Emulator, Fault, Vendor};
///
/// # async fn demo() -> std::io::Result<()> {
/// let emulator = Emulator::start(Vendor::SotiConnect).await?;
/// assert!(emulator.token_url().ends_with("/Connect/api/token"));
/// assert_eq!(emulator.requests(), 0);
///
/// // The next request fails with a 503, the ones after it succeed again.
/// emulator.set_fault_next(1, Fault::Status(503));
/// emulator.shutdown().await;
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
/// ```
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: watch::Sender<()>,
    task: JoinHandle<()>,
}

impl Emulator {
    /// Starts an emulator of `vendor` on `127.0.0.1` and an ephemeral port.
    ///
    /// Must be called inside a Tokio runtime with the IO and time drivers
    /// enabled (as `#[tokio::test]` provides).
    pub async fn start(vendor: Vendor) -> io::Result<Emulator> {
        Self::start_on(vendor, 0).await
    }

    /// Starts an emulator of `vendor` on `127.0.0.1:port` (`0` picks a free
    /// port), e.g. for `tokensmith mock-server --port N`.
    pub async fn start_on(vendor: Vendor, port: u16) -> io::Result<Emulator> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(vendor, format!("http://{addr}")));
        let (stop, stopped) = watch::channel(());
        let task = tokio::spawn(server::serve(listener, Arc::clone(&shared), stopped));
        Ok(Emulator { shared, addr, stop, task })
    }

    /// Stops accepting connections, closes open ones and waits until the
    /// port is released. Dropping the emulator stops it too, without waiting.
    pub async fn shutdown(self) {
        let Emulator { stop, task, .. } = self;
        drop(stop);
        // The task only ends by returning; a join error would mean a panic
        // in the accept loop, which has nothing left to clean up.
        let _ = task.await;
    }

    /// The emulated vendor.
    pub fn vendor(&self) -> Vendor {
        self.shared.vendor
    }

    /// The socket address the emulator listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The token endpoint URL, e.g.
    /// `http://127.0.0.1:PORT/configapi/v2/oauth/token`.
    pub fn token_url(&self) -> String {
        format!("{}{}", self.shared.base_url, self.shared.vendor.token_path())
    }

    /// The issuer identifier of the scoped OAuth 2.0 emulator's discovery
    /// document: `http://127.0.0.1:PORT`, the [`base_url`](Emulator::base_url)
    /// (see [`Discovery`]). Other vendors serve no discovery document.
    pub fn issuer(&self) -> String {
        self.shared.base_url.clone()
    }

    /// Sets what the discovery document says and where it is served
    /// (scoped OAuth 2.0; [`Discovery::new`] by default).
    pub fn set_discovery(&self, discovery: Discovery) {
        self.shared.lock().discovery = discovery;
    }

    /// The paths of the requests under `/.well-known/` (discovery), oldest
    /// first; they are not counted by [`requests`](Emulator::requests).
    pub fn discovery_requests(&self) -> Vec<String> {
        self.shared.lock().discovery_requests.clone()
    }

    /// The test credentials the emulator accepts (same as
    /// [`Vendor::credentials`]).
    pub fn credentials(&self) -> crate::Credentials {
        self.shared.vendor.credentials()
    }

    /// A ready `[providers.NAME]` TOML table (contract §3) for this
    /// emulator, with the test secrets as literal strings.
    ///
    /// SOTI Connect uses the `password` grant and scoped OAuth 2.0 the
    /// `client_credentials` grant with `scope = "read write"`.
    ///
    /// ```
    /// # async fn demo() -> std::io::Result<()> {
    /// use tokensmith_testkit::{Emulator, Vendor};
    ///
    /// let emulator = Emulator::start(Vendor::ConfigApi).await?;
    /// let toml = emulator.config_snippet("tenant");
    /// assert!(toml.starts_with("[providers.tenant]\nkind = \"configapi\"\n"));
    /// assert!(toml.contains("scope = \"example.com\"\n"));
    /// # Ok(()) }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
    /// ```
    pub fn config_snippet(&self, name: &str) -> String {
        crate::snippet::config_snippet(self.shared.vendor, name, &self.token_url())
    }

    /// How many requests reached the token endpoint, whatever their outcome
    /// (faulted ones included).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// How many tokens the emulator issued (successful token responses, not
    /// counting faults or a followed redirect).
    pub fn tokens_issued(&self) -> u64 {
        self.shared.tokens_issued.load(Ordering::SeqCst)
    }

    /// How many token-endpoint requests carried `grant_type=<grant>`.
    pub fn grant_requests(&self, grant: &str) -> u64 {
        self.shared.lock().grants.get(grant).copied().unwrap_or(0)
    }

    /// How many requests followed the `Location` of [`Fault::Redirect`]
    /// (a correct client never does: this stays 0).
    pub fn redirect_follows(&self) -> u64 {
        self.shared.redirect_follows.load(Ordering::SeqCst)
    }

    /// The requests to the token endpoint, oldest first (the most recent
    /// 1000).
    pub fn recorded_requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().log.all()
    }

    /// The most recent request to the token endpoint.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.shared.lock().log.last()
    }

    /// Resets every counter and forgets the recorded requests (issued codes
    /// and refresh tokens stay valid).
    pub fn reset_counters(&self) {
        self.shared.requests.store(0, Ordering::SeqCst);
        self.shared.tokens_issued.store(0, Ordering::SeqCst);
        self.shared.redirect_follows.store(0, Ordering::SeqCst);
        self.shared.faults_applied.store(0, Ordering::SeqCst);
        let mut inner = self.shared.lock();
        inner.grants.clear();
        inner.log.clear();
        inner.discovery_requests.clear();
    }

    /// Sets the lifetime of the tokens issued from now on: the `expires_in`
    /// of the response (and the `exp` of Deyel's JWT). Starts at
    /// [`Vendor::default_token_lifetime`]; sub-second parts are dropped.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.shared.lock().lifetime = lifetime;
    }

    /// The lifetime of the tokens issued now.
    pub fn token_lifetime(&self) -> Duration {
        self.shared.lock().lifetime
    }

    /// Applies `fault` to every request from now on, until
    /// [`clear_fault`](Emulator::clear_fault).
    pub fn set_fault(&self, fault: Fault) {
        self.shared.lock().fault = Some(FaultPlan { fault, schedule: Schedule::Always });
    }

    /// Applies `fault` to the next `n` requests only; the ones after them
    /// are answered normally. `n = 0` clears the fault.
    pub fn set_fault_next(&self, n: u64, fault: Fault) {
        self.shared.lock().fault =
            (n > 0).then_some(FaultPlan { fault, schedule: Schedule::Next(n) });
    }

    /// Applies `fault` to every `n`-th request from now on (the `n`-th,
    /// `2n`-th, … counted from this call), until
    /// [`clear_fault`](Emulator::clear_fault): a deterministic ratio of
    /// faults, so a load test is the same on every run (`n = 10` faults 10 %
    /// of the requests). `n = 1` faults every request; `n = 0` clears the
    /// fault.
    ///
    /// ```
    /// # async fn demo() -> std::io::Result<()> {
    /// use tokensmith_testkit::{Emulator, Fault, Vendor};
    ///
    /// let emulator = Emulator::start(Vendor::ConfigApi).await?;
    /// // Requests 10, 20, 30, … answer 503; the others get a token.
    /// emulator.set_fault_every(10, Fault::Status(503));
    /// # Ok(()) }
    /// ```
    pub fn set_fault_every(&self, n: u64, fault: Fault) {
        self.shared.lock().fault =
            (n > 0).then_some(FaultPlan { fault, schedule: Schedule::Every { n, seen: 0 } });
    }

    /// Removes any fault: requests are answered normally (the
    /// [latency](Emulator::set_latency) stays).
    pub fn clear_fault(&self) {
        self.shared.lock().fault = None;
    }

    /// How many requests a fault was applied to (set with any of the
    /// `set_fault…` methods), since the start or
    /// [`reset_counters`](Emulator::reset_counters).
    pub fn faults_applied(&self) -> u64 {
        self.shared.faults_applied.load(Ordering::SeqCst)
    }

    /// Adds `latency` to every token request from now on, faulted or not,
    /// before it is answered (as a distant or busy server takes);
    /// `Duration::ZERO` (the start) removes it. It adds to a
    /// [`Fault::Delay`].
    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().latency = latency;
    }

    /// Issues a single-use authorization code for the default client, as if
    /// the user had just approved it (SOTI Connect, scoped OAuth 2.0).
    ///
    /// For scoped OAuth 2.0 the code is bound to the default
    /// [`redirect_uri`](crate::Credentials::redirect_uri) and scope, without
    /// PKCE; use [`issue_code_with`](Emulator::issue_code_with) for more.
    pub fn issue_code(&self) -> String {
        self.issue_code_with(CodeRequest::new())
    }

    /// Issues a single-use authorization code as described by `request`.
    ///
    /// ```
    /// # async fn demo() -> std::io::Result<()> {
    /// use tokensmith_testkit::{CodeRequest, Emulator, Vendor};
    ///
    /// let emulator = Emulator::start(Vendor::OAuth2).await?;
    /// let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    /// let code = emulator.issue_code_with(
    ///     CodeRequest::new().pkce_verifier(verifier).scope("openid read"),
    /// );
    /// // POST grant_type=authorization_code&code=…&redirect_uri=…&code_verifier=…
    /// # let _ = code; Ok(()) }
    /// ```
    pub fn issue_code_with(&self, request: CodeRequest) -> String {
        let creds = self.shared.vendor.credentials();
        let code = self.shared.random_token("", 24);
        let grant = IssuedCode {
            client_id: request.client_id.unwrap_or_else(|| creds.client_id().to_owned()),
            redirect_uri: request.redirect_uri.or_else(|| creds.redirect_uri().map(str::to_owned)),
            code_challenge: request.code_challenge,
            scope: request.scope.or_else(|| creds.scope().map(str::to_owned)),
            used: false,
        };
        self.shared.lock().codes.insert(code.clone(), grant);
        code
    }

    /// Issues a refresh token for the default client and scope, as if an
    /// earlier exchange had returned it (SOTI Connect in refresh mode,
    /// scoped OAuth 2.0), for configs using `grant = "refresh_token"`.
    pub fn issue_refresh_token(&self) -> String {
        let creds = self.shared.vendor.credentials();
        let mut inner = self.shared.lock();
        self.shared.new_refresh_token(&mut inner, creds.client_id(), creds.scope())
    }

    /// Whether token responses carry a `refresh_token` (and the
    /// `refresh_token` grant is accepted).
    ///
    /// SOTI Connect: off by default; when on, `authorization_code` responses
    /// carry one. Scoped OAuth 2.0: on by default for `authorization_code` and
    /// `refresh_token` responses (never for `client_credentials`).
    pub fn set_issue_refresh_tokens(&self, on: bool) {
        self.shared.lock().issue_refresh_tokens = on;
    }

    /// Whether a used refresh token is replaced (on, the default: the
    /// response carries a new one and the old one is refused from then on) or
    /// stays valid (off: the response carries none).
    pub fn set_rotate_refresh_tokens(&self, on: bool) {
        self.shared.lock().rotate_refresh_tokens = on;
    }

    /// How the scoped OAuth 2.0 emulator decodes Basic client credentials:
    /// [`BasicEncoding::Form`] (RFC 6749, the default) or
    /// [`BasicEncoding::Raw`].
    pub fn set_basic_encoding(&self, encoding: BasicEncoding) {
        self.shared.lock().basic_encoding = encoding;
    }

    /// Sets the time the emulator stamps into tokens (the `iat`/`exp` of
    /// JWTs). By default it reads the system clock; a test driving a
    /// `tokensmith_core::ManualClock` passes it in
    /// (`move || clock.now()`). The function must not call the emulator.
    ///
    /// ```
    /// # async fn demo() -> std::io::Result<()> {
    /// use std::time::{Duration, SystemTime};
    /// use tokensmith_testkit::{Emulator, Vendor};
    ///
    /// let emulator = Emulator::start(Vendor::Deyel).await?;
    /// let fixed = SystemTime::UNIX_EPOCH + Duration::from_secs(1_654_175_090);
    /// emulator.set_clock(move || fixed);
    /// # Ok(()) }
    /// ```
    pub fn set_clock<F>(&self, now: F)
    where
        F: Fn() -> SystemTime + Send + Sync + 'static,
    {
        self.shared.lock().clock = Some(Arc::new(now));
    }
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("vendor", &self.shared.vendor)
            .field("addr", &self.addr)
            .field("requests", &self.requests())
            .finish_non_exhaustive()
    }
}

/// What an authorization code is issued for (see
/// [`Emulator::issue_code_with`]). Unset fields take the vendor's defaults.
#[derive(Clone, Default)]
pub struct CodeRequest {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    code_challenge: Option<String>,
    scope: Option<String>,
}

impl CodeRequest {
    /// A code for the default client, redirect URI and scope, without PKCE.
    pub fn new() -> Self {
        Self::default()
    }

    /// Binds the code to another client, e.g. the public client
    /// ([`Credentials::public_client_id`](crate::Credentials::public_client_id)).
    #[must_use]
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// The `redirect_uri` the token request must repeat.
    #[must_use]
    pub fn redirect_uri(mut self, redirect_uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(redirect_uri.into());
        self
    }

    /// Requires PKCE (RFC 7636, `S256`): the token request must carry this
    /// `code_verifier`.
    #[must_use]
    pub fn pkce_verifier(self, code_verifier: &str) -> Self {
        self.code_challenge_s256(pkce_challenge_s256(code_verifier))
    }

    /// Requires PKCE with this `S256` code challenge, as an authorization
    /// request would carry it.
    #[must_use]
    pub fn code_challenge_s256(mut self, code_challenge: impl Into<String>) -> Self {
        self.code_challenge = Some(code_challenge.into());
        self
    }

    /// The space-delimited scope granted with the code.
    #[must_use]
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }
}

impl fmt::Debug for CodeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeRequest")
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("pkce", &self.code_challenge.is_some())
            .field("scope", &self.scope)
            .finish()
    }
}

/// The RFC 7636 `S256` code challenge of `code_verifier`:
/// `BASE64URL-NOPAD(SHA-256(verifier))`.
///
/// ```
/// // The example of RFC 7636, appendix B.
/// assert_eq!(
///     tokensmith_testkit::pkce_challenge_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
///     "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
/// );
/// ```
pub fn pkce_challenge_s256(code_verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(code_verifier.as_bytes()))
}

/// The state every connection of one emulator shares.
pub(crate) struct Shared {
    pub(crate) vendor: Vendor,
    pub(crate) base_url: String,
    requests: AtomicU64,
    tokens_issued: AtomicU64,
    redirect_follows: AtomicU64,
    faults_applied: AtomicU64,
    random: RandomState,
    random_counter: AtomicU64,
    inner: Mutex<Inner>,
}

/// The mutable state, behind one lock never held across an `.await`.
pub(crate) struct Inner {
    pub(crate) lifetime: Duration,
    fault: Option<FaultPlan>,
    latency: Duration,
    grants: HashMap<String, u64>,
    log: RequestLog,
    pub(crate) codes: HashMap<String, IssuedCode>,
    pub(crate) refresh_tokens: HashMap<String, RefreshGrant>,
    pub(crate) issue_refresh_tokens: bool,
    pub(crate) rotate_refresh_tokens: bool,
    pub(crate) basic_encoding: BasicEncoding,
    clock: Option<Arc<dyn Fn() -> SystemTime + Send + Sync>>,
    discovery: Discovery,
    discovery_requests: Vec<String>,
}

impl Inner {
    /// The emulator's current time in seconds since the Unix epoch.
    pub(crate) fn unix_now(&self) -> u64 {
        let now = match &self.clock {
            Some(clock) => clock(),
            #[allow(
                clippy::disallowed_methods,
                reason = "an emulated server has its own wall clock; tests pin it with Emulator::set_clock"
            )]
            None => SystemTime::now(),
        };
        now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs()
    }

    /// The `expires_in` of tokens issued now, in whole seconds.
    pub(crate) fn expires_in(&self) -> u64 {
        self.lifetime.as_secs()
    }
}

struct FaultPlan {
    fault: Fault,
    schedule: Schedule,
}

/// Which requests a [`FaultPlan`] applies to.
enum Schedule {
    /// Every request, until cleared.
    Always,
    /// The next this many requests.
    Next(u64),
    /// Every `n`-th request; `seen` requests so far.
    Every { n: u64, seen: u64 },
}

/// An authorization code issued by a test.
pub(crate) struct IssuedCode {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: Option<String>,
    pub(crate) code_challenge: Option<String>,
    pub(crate) scope: Option<String>,
    pub(crate) used: bool,
}

/// What a live refresh token was issued for.
pub(crate) struct RefreshGrant {
    pub(crate) client_id: String,
    pub(crate) scope: Option<String>,
}

impl Shared {
    fn new(vendor: Vendor, base_url: String) -> Self {
        Shared {
            vendor,
            base_url,
            requests: AtomicU64::new(0),
            tokens_issued: AtomicU64::new(0),
            redirect_follows: AtomicU64::new(0),
            faults_applied: AtomicU64::new(0),
            random: RandomState::new(),
            random_counter: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                lifetime: vendor.default_token_lifetime(),
                fault: None,
                latency: Duration::ZERO,
                grants: HashMap::new(),
                log: RequestLog::new(),
                codes: HashMap::new(),
                refresh_tokens: HashMap::new(),
                issue_refresh_tokens: vendor == Vendor::OAuth2,
                rotate_refresh_tokens: true,
                basic_encoding: BasicEncoding::Form,
                clock: None,
                discovery: Discovery::new(),
                discovery_requests: Vec::new(),
            }),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts and records a token request; returns the fault to apply.
    pub(crate) fn arrive(&self, request: RecordedRequest) -> Option<Fault> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let grant = request.form_value("grant_type");
        let mut inner = self.lock();
        if let Some(grant) = grant {
            *inner.grants.entry(grant).or_default() += 1;
        }
        inner.log.push(request);
        let plan = inner.fault.as_mut()?;
        let fault = plan.fault.clone();
        match &mut plan.schedule {
            Schedule::Always => {}
            Schedule::Next(1) => inner.fault = None,
            Schedule::Next(n) => *n -= 1,
            Schedule::Every { n, seen } => {
                *seen += 1;
                if *seen % *n != 0 {
                    return None;
                }
            }
        }
        self.faults_applied.fetch_add(1, Ordering::SeqCst);
        Some(fault)
    }

    /// The latency added to every token request.
    pub(crate) fn latency(&self) -> Duration {
        self.lock().latency
    }

    /// Records a discovery request; returns the discovery settings.
    pub(crate) fn record_discovery(&self, path: &str) -> Discovery {
        let mut inner = self.lock();
        if inner.discovery_requests.len() < 1000 {
            inner.discovery_requests.push(path.to_owned());
        }
        inner.discovery.clone()
    }

    pub(crate) fn count_issued(&self) {
        self.tokens_issued.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn count_redirect_follow(&self) {
        self.redirect_follows.fetch_add(1, Ordering::SeqCst);
    }

    /// `prefix` and `len` random-looking bytes in base64url: a fresh value
    /// per call.
    pub(crate) fn random_token(&self, prefix: &str, len: usize) -> String {
        let mut bytes = Vec::with_capacity(len + 8);
        while bytes.len() < len {
            let n = self.random_counter.fetch_add(1, Ordering::Relaxed);
            bytes.extend_from_slice(&self.random.hash_one(n).to_le_bytes());
        }
        bytes.truncate(len);
        format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Registers and returns a new refresh token.
    pub(crate) fn new_refresh_token(
        &self,
        inner: &mut Inner,
        client_id: &str,
        scope: Option<&str>,
    ) -> String {
        let token = self.random_token("rt_", 32);
        inner.refresh_tokens.insert(
            token.clone(),
            RefreshGrant { client_id: client_id.to_owned(), scope: scope.map(str::to_owned) },
        );
        token
    }

    /// A JWT-shaped token (`header.payload.signature`, base64url) with a
    /// random signature; `header` and `payload` are JSON objects.
    pub(crate) fn jwt(&self, header: &str, payload: &str) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload),
            self.random_token("", 256)
        )
    }
}
