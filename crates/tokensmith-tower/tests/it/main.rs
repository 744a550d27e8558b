//! Integration tests of tokensmith-tower over real HTTP on 127.0.0.1: a
//! small resource server that refuses a token once it has been rotated, a
//! hyper-util client through the layer, and a tonic client against a tonic
//! server through the layer and the interceptor. The tokens come from a
//! counting provider wrapped in a real `CachedProvider` on a `ManualClock`.

mod common;
mod hyper_client;
mod tonic_client;
