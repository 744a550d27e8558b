//! The Redis token store against a real `redis-server` each test starts on
//! a free loopback port (`tokensmith_testkit::redis::RedisServer`): no mock.
//! Real time only where Redis measures it (a lease's `PX`), bounded.

mod cache;
mod faults;
mod store;
mod support;
