//! `private_key_jwt` client authentication (RFC 7523 §2.2, OIDC Core §9):
//! the client proves its identity with a JWT signed by its private key
//! instead of a shared secret.
//!
//! Each token request carries a fresh assertion:
//!
//! | claim | value |
//! |---|---|
//! | `iss`, `sub` | the `client_id` |
//! | `aud` | the token endpoint URL, or `assertion_audience` when configured (some servers want their issuer) |
//! | `jti` | 128 random bits, base64url: never reused |
//! | `iat` | now (the provider's clock) |
//! | `exp` | now + [`ASSERTION_LIFETIME`] |
//!
//! sent as `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`
//! and `client_assertion=<JWT>` with `client_id` in the form body.
//!
//! The key is a PEM file (`private_key = { file = "key.pem" }`): PKCS#8
//! (`BEGIN PRIVATE KEY`), PKCS#1 (`BEGIN RSA PRIVATE KEY`) or SEC1
//! (`BEGIN EC PRIVATE KEY`). An RSA key (2048 to 8192 bits) signs with
//! `RS256`, a P-256 key with `ES256`. The DER structures are read with the
//! `RustCrypto` `pkcs8` and `sec1` crates (a SEC1 key is wrapped in PKCS#8 for
//! `ring`); signing uses `ring`, the crypto library rustls already brings in. Neither the key nor an assertion is ever shown
//! by `Debug` or in an error.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pkcs8::der::asn1::{AnyRef, OctetStringRef};
use pkcs8::{
    AlgorithmIdentifierRef, EncodePrivateKey as _, ObjectIdentifier, PrivateKeyInfoRef,
    SecretDocument,
};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use sec1::EcPrivateKey;
use tokensmith_core::secrecy::{ExposeSecret, SecretString};
use tokensmith_core::{
    ClientAuth, ConfigSecret, ProviderContext, TokenEndpoint, TokenError, TokenRequest,
};

/// The `client_assertion_type` of a JWT bearer assertion (RFC 7523 §2.2).
pub(crate) const CLIENT_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is valid: short, since each one is used once.
pub(crate) const ASSERTION_LIFETIME: Duration = Duration::from_mins(1);

/// The `private_key_jwt` fields of a provider table.
pub(crate) struct JwtFields {
    /// `private_key`: the PEM private key (a secret).
    pub(crate) private_key: Option<ConfigSecret>,
    /// `private_key_id`: the `kid` header, when the server wants one.
    pub(crate) private_key_id: Option<String>,
    /// `assertion_audience`: `"token_endpoint"` (default), `"issuer"`, or a literal `aud`.
    pub(crate) assertion_audience: Option<String>,
    /// `issuer`, when discovery is configured.
    pub(crate) issuer: Option<String>,
}

/// A client's signing key and what its assertions say.
pub(crate) struct PrivateKeyJwt {
    key: SigningKey,
    key_id: Option<String>,
    audience: Option<String>,
    rng: SystemRandom,
}

enum SigningKey {
    Rs256(RsaKeyPair),
    Es256(EcdsaKeyPair),
}

impl fmt::Debug for PrivateKeyJwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKeyJwt")
            .field("alg", &self.alg())
            .field("key_id", &self.key_id)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl PrivateKeyJwt {
    /// Parses the PEM private key. Errors are config errors for `field`
    /// (they never quote the key).
    pub(crate) fn from_pem(
        provider: &str,
        field: &str,
        pem: &SecretString,
        key_id: Option<String>,
        audience: Option<String>,
    ) -> Result<Self, TokenError> {
        let error = |message: &str| TokenError::config(Some(provider), Some(field), message);
        let der = PrivateKeyDer::from_pem_slice(pem.expose_secret().as_bytes()).map_err(|_| {
            error(
                "no unencrypted PEM private key found (expected BEGIN PRIVATE KEY, \
                 BEGIN RSA PRIVATE KEY or BEGIN EC PRIVATE KEY)",
            )
        })?;
        let rng = SystemRandom::new();
        let p256_only =
            |e| error(&format!("EC key rejected ({e}): only P-256 keys (ES256) are supported"));
        let key = match &der {
            PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der())
                .map(SigningKey::Rs256)
                .map_err(|e| error(&format!("RSA key rejected: {e}")))?,
            PrivateKeyDer::Sec1(der) => {
                let pkcs8 = sec1_to_pkcs8(der.secret_sec1_der()).map_err(|e| error(&e))?;
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_bytes(), &rng)
                    .map(SigningKey::Es256)
                    .map_err(|e| p256_only(e.to_string()))?
            }
            PrivateKeyDer::Pkcs8(der) => {
                let der = der.secret_pkcs8_der();
                let info = PrivateKeyInfoRef::try_from(der)
                    .map_err(|_| error("the PKCS#8 private key is not valid DER"))?;
                match (info.algorithm.oid, info.algorithm.parameters_oid().ok()) {
                    (RSA_ENCRYPTION, _) => RsaKeyPair::from_pkcs8(der)
                        .map(SigningKey::Rs256)
                        .map_err(|e| error(&format!("RSA key rejected: {e}")))?,
                    (sec1::ALGORITHM_OID, Some(PRIME256V1)) => {
                        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
                            .map(SigningKey::Es256)
                            .map_err(|e| p256_only(e.to_string()))?
                    }
                    (sec1::ALGORITHM_OID, curve) => {
                        return Err(p256_only(format!("curve {}", display_oid(curve))));
                    }
                    (other, _) => {
                        return Err(error(&format!(
                            "unsupported private key (algorithm {other}): use an RSA key of 2048 \
                             to 8192 bits (RS256) or an EC P-256 key (ES256)"
                        )));
                    }
                }
            }
            _ => return Err(error("unsupported private key type")),
        };
        Ok(Self { key, key_id, audience, rng })
    }

    /// The `private_key_jwt` fields of a provider, validated: `Some` when
    /// `private_key` is set (then `auth_method` must be absent or
    /// `private_key_jwt`, and no `client_secret` is set), an error when
    /// `auth_method = "private_key_jwt"` lacks a key or when
    /// `private_key_id` / `assertion_audience` come without one.
    /// `assertion_audience = "issuer"` means the configured `issuer`.
    pub(crate) fn from_config(
        ctx: &ProviderContext,
        method_is_jwt: Option<bool>,
        fields: JwtFields,
    ) -> Result<Option<Self>, TokenError> {
        let JwtFields { private_key, private_key_id, assertion_audience, issuer } = fields;
        let Some(pem) = private_key else {
            if method_is_jwt == Some(true) {
                return Err(
                    ctx.error("private_key", "required with auth_method = \"private_key_jwt\"")
                );
            }
            for (field, set) in [
                ("private_key_id", private_key_id.is_some()),
                ("assertion_audience", assertion_audience.is_some()),
            ] {
                if set {
                    return Err(ctx.error(
                        field,
                        "only used with private_key (auth_method = \"private_key_jwt\")",
                    ));
                }
            }
            return Ok(None);
        };
        if method_is_jwt == Some(false) {
            return Err(
                ctx.error("private_key", "only used with auth_method = \"private_key_jwt\"")
            );
        }
        if ctx.common().client_secret.is_some() {
            return Err(ctx.error(
                "client_secret",
                "private_key_jwt authenticates with the private key; remove client_secret",
            ));
        }
        let audience = match assertion_audience.as_deref() {
            Some("") => return Err(ctx.error("assertion_audience", "is empty")),
            Some("issuer") => Some(issuer.ok_or_else(|| {
                ctx.error("assertion_audience", "\"issuer\" needs the issuer field (discovery)")
            })?),
            Some("token_endpoint") | None => None,
            Some(other) => Some(other.to_owned()),
        };
        Self::from_pem(ctx.name(), "private_key", pem.as_secret(), private_key_id, audience)
            .map(Some)
    }

    /// Authenticates `request` to `endpoint` as `client_id` with a fresh
    /// assertion: `client_id`, `client_assertion_type` and
    /// `client_assertion` in the form body.
    pub(crate) fn authenticate<'a>(
        &self,
        request: TokenRequest<'a>,
        endpoint: &TokenEndpoint,
        client_id: &str,
    ) -> Result<TokenRequest<'a>, TokenError> {
        let assertion = self.assertion(
            endpoint.provider(),
            client_id,
            endpoint.url().as_str(),
            endpoint.clock().now(),
        )?;
        Ok(request
            .client_auth(ClientAuth::None, client_id, None)
            .param("client_assertion_type", CLIENT_ASSERTION_TYPE)
            .secret_param("client_assertion", &assertion))
    }

    /// The JWS algorithm: `RS256` or `ES256`.
    pub(crate) fn alg(&self) -> &'static str {
        match self.key {
            SigningKey::Rs256(_) => "RS256",
            SigningKey::Es256(_) => "ES256",
        }
    }

    /// A fresh signed assertion for `client_id` to the token endpoint
    /// `token_url`, issued at `now`.
    pub(crate) fn assertion(
        &self,
        provider: &str,
        client_id: &str,
        token_url: &str,
        now: SystemTime,
    ) -> Result<SecretString, TokenError> {
        let internal = |what: &str| {
            TokenError::config(
                Some(provider),
                Some("private_key"),
                format!("cannot sign the client assertion: {what}"),
            )
        };
        let mut jti = [0_u8; 16];
        self.rng.fill(&mut jti).map_err(|_| internal("no randomness for jti"))?;
        let iat = now.duration_since(UNIX_EPOCH).map_err(|_| internal("clock before 1970"))?;
        let iat = iat.as_secs();
        let header = match &self.key_id {
            Some(kid) => serde_json::json!({ "alg": self.alg(), "typ": "JWT", "kid": kid }),
            None => serde_json::json!({ "alg": self.alg(), "typ": "JWT" }),
        };
        let claims = serde_json::json!({
            "iss": client_id,
            "sub": client_id,
            "aud": self.audience.as_deref().unwrap_or(token_url),
            "jti": URL_SAFE_NO_PAD.encode(jti),
            "iat": iat,
            "exp": iat + ASSERTION_LIFETIME.as_secs(),
        });
        let mut jwt = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = match &self.key {
            SigningKey::Rs256(key) => {
                let mut sig = vec![0_u8; key.public().modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &self.rng, jwt.as_bytes(), &mut sig)
                    .map_err(|_| internal("RSA signing failed"))?;
                sig
            }
            SigningKey::Es256(key) => key
                .sign(&self.rng, jwt.as_bytes())
                .map_err(|_| internal("ECDSA signing failed"))?
                .as_ref()
                .to_vec(),
        };
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(SecretString::from(jwt))
    }
}

/// `rsaEncryption` (RFC 8017 appendix C).
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// The P-256 curve, `prime256v1` / `secp256r1` (RFC 5480 §2.1.1.1).
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// An OID for a message, or `none` when absent.
fn display_oid(oid: Option<ObjectIdentifier>) -> String {
    oid.map_or_else(|| "none".to_owned(), |oid| oid.to_string())
}

/// Wraps a SEC1 `ECPrivateKey` (RFC 5915) in a PKCS#8 v1 envelope for the
/// P-256 curve (what `ring` reads). A key naming another curve is refused
/// here; one naming none is taken as P-256, and `ring` checks the rest.
fn sec1_to_pkcs8(sec1_der: &[u8]) -> Result<SecretDocument, String> {
    let key =
        EcPrivateKey::try_from(sec1_der).map_err(|_| "the EC private key is not valid SEC1 DER")?;
    let curve = key.parameters.and_then(sec1::EcParameters::named_curve);
    if curve.is_some_and(|curve| curve != PRIME256V1) {
        return Err(format!(
            "EC key rejected (curve {}): only P-256 keys (ES256) are supported",
            display_oid(curve)
        ));
    }
    let algorithm = AlgorithmIdentifierRef {
        oid: sec1::ALGORITHM_OID,
        parameters: Some(AnyRef::from(&PRIME256V1)),
    };
    let private_key = OctetStringRef::new(sec1_der).map_err(|e| e.to_string())?;
    PrivateKeyInfoRef::new(algorithm, private_key).to_pkcs8_der().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use ring::signature::{ECDSA_P256_SHA256_FIXED, KeyPair as _, RSA_PKCS1_2048_8192_SHA256};

    use super::*;

    const EC_P256_SEC1: &str = include_str!("../testdata/ec-p256-sec1.pem");
    const EC_P384_SEC1: &str = include_str!("../testdata/ec-p384-sec1.pem");
    const RSA_PKCS1: &str = include_str!("../testdata/rsa2048-pkcs1.pem");
    const EC_P256_PKCS8: &str = include_str!("../testdata/ec-p256-pkcs8.pem");
    const EC_P384_PKCS8: &str = include_str!("../testdata/ec-p384-pkcs8.pem");
    const RSA_PKCS8: &str = include_str!("../testdata/rsa2048-pkcs8.pem");
    const ED25519_PKCS8: &str = include_str!("../testdata/ed25519-pkcs8.pem");

    fn key(pem: &str, key_id: Option<&str>, audience: Option<&str>) -> PrivateKeyJwt {
        PrivateKeyJwt::from_pem(
            "p",
            "private_key",
            &pem.into(),
            key_id.map(str::to_owned),
            audience.map(str::to_owned),
        )
        .unwrap()
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn decode(part: &str) -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    /// Checks the header and claims, verifies the signature, returns the claims.
    fn check(key: &PrivateKeyJwt, jwt: &SecretString, aud: &str) -> serde_json::Value {
        let jwt = jwt.expose_secret();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header = decode(parts[0]);
        assert_eq!(header["alg"], key.alg());
        assert_eq!(header["typ"], "JWT");
        let claims = decode(parts[1]);
        assert_eq!(claims["iss"], "client-1");
        assert_eq!(claims["sub"], "client-1");
        assert_eq!(claims["aud"], aud);
        assert_eq!(claims["iat"], 1_700_000_000);
        assert_eq!(claims["exp"], 1_700_000_060);
        assert_eq!(URL_SAFE_NO_PAD.decode(claims["jti"].as_str().unwrap()).unwrap().len(), 16);
        let signed = &jwt[..parts[0].len() + 1 + parts[1].len()];
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        match &key.key {
            SigningKey::Rs256(k) => ring::signature::UnparsedPublicKey::new(
                &RSA_PKCS1_2048_8192_SHA256,
                k.public_key().as_ref(),
            )
            .verify(signed.as_bytes(), &sig)
            .unwrap(),
            SigningKey::Es256(k) => {
                assert_eq!(sig.len(), 64, "JWS ES256 is r || s, 32 bytes each");
                ring::signature::UnparsedPublicKey::new(
                    &ECDSA_P256_SHA256_FIXED,
                    k.public_key().as_ref(),
                )
                .verify(signed.as_bytes(), &sig)
                .unwrap();
            }
        }
        claims
    }

    #[test]
    fn es256_from_a_sec1_pem() {
        let key = key(EC_P256_SEC1, None, None);
        assert_eq!(key.alg(), "ES256");
        let jwt = key.assertion("p", "client-1", "https://as.example/token", now()).unwrap();
        check(&key, &jwt, "https://as.example/token");
    }

    #[test]
    fn rs256_from_a_pkcs1_pem() {
        let key = key(RSA_PKCS1, None, None);
        assert_eq!(key.alg(), "RS256");
        let jwt = key.assertion("p", "client-1", "https://as.example/token", now()).unwrap();
        check(&key, &jwt, "https://as.example/token");
    }

    /// Every PEM form `openssl` writes for a supported key signs a verifiable
    /// assertion with its algorithm.
    #[test]
    fn keys_in_every_supported_format_sign() {
        for (pem, alg) in [
            (EC_P256_SEC1, "ES256"),
            (EC_P256_PKCS8, "ES256"),
            (RSA_PKCS1, "RS256"),
            (RSA_PKCS8, "RS256"),
        ] {
            let key = key(pem, None, None);
            assert_eq!(key.alg(), alg, "{}", &pem[..30]);
            let jwt = key.assertion("p", "client-1", "https://as.example/token", now()).unwrap();
            check(&key, &jwt, "https://as.example/token");
        }
    }

    #[test]
    fn every_assertion_has_a_fresh_jti_and_the_configured_audience_and_kid() {
        let key = key(EC_P256_SEC1, Some("kid-1"), Some("https://as.example"));
        let a = key.assertion("p", "client-1", "https://as.example/token", now()).unwrap();
        let b = key.assertion("p", "client-1", "https://as.example/token", now()).unwrap();
        assert_ne!(
            check(&key, &a, "https://as.example")["jti"],
            check(&key, &b, "https://as.example")["jti"]
        );
        assert_eq!(decode(a.expose_secret().split('.').next().unwrap())["kid"], "kid-1");
    }

    #[test]
    fn bad_keys_are_config_errors_that_never_quote_the_key() {
        for (pem, needle) in [
            ("not a key", "no unencrypted PEM private key"),
            ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "not valid DER"),
            (
                "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
                "not valid SEC1",
            ),
            (EC_P384_SEC1, "only P-256 keys"),
            (EC_P384_PKCS8, "only P-256 keys"),
            (ED25519_PKCS8, "unsupported private key (algorithm 1.3.101.112)"),
        ] {
            let err =
                PrivateKeyJwt::from_pem("p", "private_key", &pem.into(), None, None).unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, TokenError::Config { .. }), "{text}");
            assert!(text.contains("private_key") && text.contains(needle), "{text}");
            assert!(
                !text.contains("AAAA") && !text.contains("MIG") && !text.contains("MC4"),
                "{text}"
            );
        }
    }

    #[test]
    fn debug_shows_the_algorithm_not_the_key() {
        let debug = format!("{:?}", key(EC_P256_SEC1, None, None));
        assert!(debug.contains("ES256"), "{debug}");
        assert!(!debug.contains("MHcCAQEE"), "{debug}");
    }

    #[test]
    fn config_combinations_are_checked_at_load() {
        let key_file = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/ec-p256-sec1.pem");
        let key = format!("private_key = {{ file = \"{key_file}\" }}\n");
        let load = |fields: &str| {
            let toml = format!(
                "kind = \"oauth2\"\ntoken_url = \"https://as.example/token\"\nclient_id = \"id\"\n{fields}"
            );
            let clock = std::sync::Arc::new(tokensmith_core::SystemClock);
            let ctx = ProviderContext::new("p", toml.parse().unwrap(), clock)?;
            crate::OAuth2Provider::from_context(&ctx)
        };
        for (fields, field, needle) in [
            ("auth_method = \"private_key_jwt\"".to_owned(), "private_key", "required"),
            (format!("{key}client_secret = \"s\""), "client_secret", "remove client_secret"),
            (format!("{key}auth_method = \"client_secret_post\""), "private_key", "only used"),
            (format!("{key}basic_encoding = \"raw\""), "basic_encoding", "only used"),
            (
                "private_key_id = \"k\"\nauth_method = \"none\"".to_owned(),
                "private_key_id",
                "only used",
            ),
            (format!("{key}assertion_audience = \"issuer\""), "assertion_audience", "issuer field"),
            ("private_key = \"not a key\"".to_owned(), "private_key", "no unencrypted PEM"),
        ] {
            let err = load(&fields).unwrap_err();
            let TokenError::Config { field: got, message, .. } = &err else { panic!("{err}") };
            assert_eq!(got.as_deref(), Some(field), "{fields}: {err}");
            assert!(message.contains(needle), "{fields}: {err}");
        }
        for fields in [
            key.clone(),
            format!("{key}auth_method = \"private_key_jwt\"\nprivate_key_id = \"k1\""),
            format!("{key}assertion_audience = \"https://as.example\""),
        ] {
            let provider = load(&fields).unwrap_or_else(|e| panic!("{fields}: {e}"));
            let debug = format!("{provider:?}");
            assert!(debug.contains("ES256") && !debug.contains("MHcC"), "{debug}");
        }
    }
}
