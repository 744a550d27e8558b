//! The emulated vendors: [`Vendor`], their token paths, default lifetimes and
//! test [`Credentials`].

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A vendor whose token endpoint the testkit emulates.
///
/// Its [`kind`](Vendor::kind) is the `kind` of the matching tokensmith adapter
/// in a config file.
///
/// ```
/// use tokensmith_testkit::Vendor;
///
/// assert_eq!(Vendor::SotiConnect.kind(), "soti-connect");
/// assert_eq!("deyel".parse::<Vendor>().unwrap(), Vendor::Deyel);
/// assert_eq!(Vendor::ALL.len(), 4);
/// ```
///
/// More vendors will come: a `match` on it needs a wildcard arm.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum Vendor {
    /// SOTI Connect (MobiControl): Basic client auth, `password` and
    /// `authorization_code` grants, lowercase `bearer`.
    SotiConnect,
    /// configapi: client credentials and tenant `scope` in the form body,
    /// string `expires_in` and a trailing comma in the JSON.
    ConfigApi,
    /// A scoped OAuth 2.0 server (RFC 6749 / RFC 7636) answering errors as
    /// `{"meta":…,"errors":[…]}`.
    OAuth2,
    /// Deyel: Basic `client_credentials`, JWT access tokens, `Invalid_request`
    /// errors.
    Deyel,
}

impl Vendor {
    /// Every vendor, in the order of the contract's table.
    pub const ALL: [Vendor; 4] =
        [Vendor::SotiConnect, Vendor::ConfigApi, Vendor::OAuth2, Vendor::Deyel];

    /// The adapter `kind` of this vendor: `soti-connect`, `configapi`,
    /// `oauth2` or `deyel`.
    pub const fn kind(self) -> &'static str {
        match self {
            Vendor::SotiConnect => "soti-connect",
            Vendor::ConfigApi => "configapi",
            Vendor::OAuth2 => "oauth2",
            Vendor::Deyel => "deyel",
        }
    }

    /// A human name of the vendor, e.g. `SOTI Connect`.
    pub const fn display_name(self) -> &'static str {
        match self {
            Vendor::SotiConnect => "SOTI Connect",
            Vendor::ConfigApi => "configapi",
            Vendor::OAuth2 => "scoped OAuth2",
            Vendor::Deyel => "Deyel",
        }
    }

    /// The path of the emulated token endpoint.
    ///
    /// SOTI Connect's and configapi's are the vendors' documented paths; the
    /// other two vendors document none, so the emulator picks a usual one.
    ///
    /// ```
    /// use tokensmith_testkit::Vendor;
    ///
    /// assert_eq!(Vendor::SotiConnect.token_path(), "/Connect/api/token");
    /// assert_eq!(Vendor::ConfigApi.token_path(), "/configapi/v2/oauth/token");
    /// ```
    pub const fn token_path(self) -> &'static str {
        match self {
            Vendor::SotiConnect => "/Connect/api/token",
            Vendor::ConfigApi => "/configapi/v2/oauth/token",
            Vendor::OAuth2 => "/oauth2/token",
            Vendor::Deyel => "/deyel/oauth/token",
        }
    }

    /// The token lifetime an emulator starts with: the `expires_in` the
    /// vendor's documentation shows (3600 s for SOTI Connect and scoped
    /// OAuth 2.0, 3599 s for configapi, 86400 s for Deyel).
    pub const fn default_token_lifetime(self) -> Duration {
        Duration::from_secs(match self {
            Vendor::SotiConnect | Vendor::OAuth2 => 3600,
            Vendor::ConfigApi => 3599,
            Vendor::Deyel => 86_400,
        })
    }

    /// The test credentials the emulator of this vendor accepts.
    ///
    /// ```
    /// use tokensmith_testkit::Vendor;
    ///
    /// let soti = Vendor::SotiConnect.credentials();
    /// assert_eq!(soti.client_id(), "Application1");
    /// assert_eq!(soti.client_secret(), Some("Application1Password"));
    /// assert_eq!(soti.username(), Some("Administrator"));
    /// ```
    pub const fn credentials(self) -> Credentials {
        match self {
            Vendor::SotiConnect => Credentials {
                client_id: "Application1",
                client_secret: Some("Application1Password"),
                username: Some("Administrator"),
                password: Some("1"),
                scope: None,
                redirect_uri: None,
                public_client_id: None,
            },
            Vendor::ConfigApi => Credentials {
                client_id: "sheila.thomas",
                client_secret: Some("qkDwDJlDfig2IpeuUZYKH1Wb8q1V0ju6sILxQQqhJ"),
                username: None,
                password: None,
                scope: Some("example.com"),
                redirect_uri: None,
                public_client_id: None,
            },
            Vendor::OAuth2 => Credentials {
                client_id: "tokensmith-app",
                client_secret: Some("s3cr3t+key/=="),
                username: None,
                password: None,
                scope: Some("read write"),
                redirect_uri: Some("http://127.0.0.1:8080/callback"),
                public_client_id: Some("tokensmith-public"),
            },
            Vendor::Deyel => Credentials {
                client_id: "APIUSER",
                client_secret: Some("Deyel-API-user-key-8.7"),
                username: None,
                password: None,
                scope: None,
                redirect_uri: None,
                public_client_id: None,
            },
        }
    }
}

impl fmt::Display for Vendor {
    /// Writes the [`kind`](Vendor::kind).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
}

impl FromStr for Vendor {
    type Err = UnknownVendor;

    /// Parses a [`kind`](Vendor::kind), ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Vendor::ALL
            .into_iter()
            .find(|v| v.kind().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownVendor(s.to_owned()))
    }
}

/// The error of parsing a [`Vendor`] from an unknown kind.
///
/// ```
/// use tokensmith_testkit::Vendor;
///
/// let err = "okta".parse::<Vendor>().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "unknown vendor `okta` (expected one of: soti-connect, configapi, oauth2, deyel)"
/// );
/// ```
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct UnknownVendor(String);

impl fmt::Display for UnknownVendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown vendor `{}` (expected one of: ", self.0)?;
        for (i, v) in Vendor::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(v.kind())?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for UnknownVendor {}

/// The test credentials an emulator accepts (see [`Vendor::credentials`]).
///
/// These are fixed, public test values, but `Debug` still redacts the secret
/// and the password, as everywhere in tokensmith.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Credentials {
    client_id: &'static str,
    client_secret: Option<&'static str>,
    username: Option<&'static str>,
    password: Option<&'static str>,
    scope: Option<&'static str>,
    redirect_uri: Option<&'static str>,
    public_client_id: Option<&'static str>,
}

impl Credentials {
    /// The client id (`Application1` for SOTI Connect, as in its docs).
    pub const fn client_id(&self) -> &'static str {
        self.client_id
    }

    /// The client secret of the confidential client.
    ///
    /// The scoped OAuth 2.0 secret (`s3cr3t+key/==`) holds characters that
    /// RFC 6749's form-encoding of Basic credentials changes, so a client
    /// that skips that encoding is refused.
    pub const fn client_secret(&self) -> Option<&'static str> {
        self.client_secret
    }

    /// The resource owner's username (SOTI Connect's `password` grant).
    pub const fn username(&self) -> Option<&'static str> {
        self.username
    }

    /// The resource owner's password (SOTI Connect's `password` grant).
    pub const fn password(&self) -> Option<&'static str> {
        self.password
    }

    /// The scope: configapi's tenant (`example.com`), or the scoped OAuth 2.0
    /// scopes a test config asks for (`read write`).
    pub const fn scope(&self) -> Option<&'static str> {
        self.scope
    }

    /// The `redirect_uri` codes are issued for by default (scoped OAuth 2.0).
    pub const fn redirect_uri(&self) -> Option<&'static str> {
        self.redirect_uri
    }

    /// The client id of the public client (scoped OAuth 2.0, `auth_method = "none"`).
    pub const fn public_client_id(&self) -> Option<&'static str> {
        self.public_client_id
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("scope", &self.scope)
            .field("redirect_uri", &self.redirect_uri)
            .field("public_client_id", &self.public_client_id)
            .finish_non_exhaustive()
    }
}
