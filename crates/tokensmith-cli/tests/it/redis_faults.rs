//! The fault table's Redis rows end to end (`docs/robustness.md`): with
//! `[store] kind = "redis"` and Redis down (connection refused), slow
//! (`CLIENT PAUSE` on a real `redis-server`) or answering garbage (a
//! hostile server on its port), the built `tokensmith token` exits 0 with a
//! token and one-line warnings that show no secret, and `tokensmith serve`
//! answers 200, keeps serving the token it has and refreshes it without
//! Redis.

use std::time::Duration;

use tokensmith_core::{Clock as _, SystemClock};
use tokensmith_testkit::Vendor;
use tokensmith_testkit::redis::{Garbage, HostileRedis, RedisServer};

use crate::serve::{Served, client_rt, get};
use crate::support::{TestEnv, provider};

/// A fixed test key (32 bytes, base64): it must never show.
const KEY: &str = "ZmF1bHQtcm93cy1rZXktZm9yLXRoZS1jbGktdGVzdHM=";
/// A password in the URL of the garbage rows: it must never show.
const PASSWORD: &str = "cli-redis-PASSWORD-3xT7";
/// The token lifetime: the agent's refresh window opens after 2 s, the
/// token goes stale after 3.6 s.
const LIFETIME: Duration = Duration::from_secs(4);
/// Turns a hang into a failure (never a timing assertion).
const PATIENCE: Duration = Duration::from_secs(15);

enum Fault {
    Down,
    Slow,
    Garbage(Garbage),
}

/// One row, through real processes: the agent's first token (shared with a
/// CLI invocation while Redis is fine), the fault switched on, then the
/// agent's token again (the same: it is still valid), a CLI invocation
/// (exit 0, a token of its own from upstream, warnings), and the agent's
/// answers (all 200) until its background refresh replaced the token
/// without Redis.
fn row(fault: &Fault) {
    let mut redis = RedisServer::start();
    let hostile = match fault {
        Fault::Garbage(garbage) => Some(HostileRedis::start(*garbage)),
        _ => None,
    };
    let url = match &hostile {
        Some(hostile) => format!("redis://:{PASSWORD}@127.0.0.1:{}", hostile.port()),
        None => redis.url(),
    };
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    deyel.set_token_lifetime(LIFETIME);
    env.write_config(&format!(
        "[store]\nkind = \"redis\"\nurl = \"{url}\"\nencryption_key = \"{KEY}\"\nlock_timeout = \"30s\"\n\n{}",
        provider(&deyel, "lowcode")
    ));
    let served = Served::start(&env, &[]);
    let rt = client_rt();
    let token_of = |answer: &crate::agent_client::Answer| {
        assert_eq!(answer.status, 200, "{answer:#?}");
        answer.json()["access_token"].as_str().unwrap().to_owned()
    };
    let first = token_of(&get(&rt, &served.target, "/v1/token/lowcode"));
    if hostile.is_none() {
        assert_eq!(env.run(&["token", "lowcode"]).ok().trim(), first, "shared through Redis");
        assert_eq!(deyel.tokens_issued(), 1);
    }
    match fault {
        Fault::Down => redis.kill(),
        Fault::Slow => redis.pause_clients(PATIENCE),
        Fault::Garbage(_) => {}
    }
    let mut answers = vec![get(&rt, &served.target, "/v1/token/lowcode")];
    assert_eq!(token_of(&answers[0]), first, "a still-valid token keeps being served");

    let before = deyel.tokens_issued();
    let cli = env.run(&["token", "lowcode"]);
    let cli_token = cli.ok().trim().to_owned();
    assert!(!cli_token.is_empty() && cli_token != first, "{cli:#?}");
    assert_eq!(deyel.tokens_issued(), before + 1, "the CLI fetched for itself");
    let warnings: Vec<&str> = cli.stderr.lines().collect();
    assert!(!warnings.is_empty(), "the CLI says why the token is not shared: {cli:#?}");
    for line in &warnings {
        assert!(line.starts_with("tokensmith: warning: "), "{cli:#?}");
    }

    // The agent refreshes in the background without Redis; every answer
    // meanwhile is a 200.
    let clock = SystemClock;
    let until = clock.monotonic() + PATIENCE;
    let refreshed = loop {
        let answer = get(&rt, &served.target, "/v1/token/lowcode");
        let token = token_of(&answer);
        answers.push(answer);
        if token != first {
            break token;
        }
        assert!(clock.monotonic() < until, "the agent never refreshed: {}", served.stderr());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_ne!(refreshed, cli_token);
    if let Some(hostile) = &hostile {
        assert!(hostile.connections() > 0, "the processes talked to it");
    }

    let log = served.stderr();
    let secret = deyel.credentials().client_secret().unwrap().to_owned();
    for needle in [PASSWORD, KEY, secret.as_str(), first.as_str(), refreshed.as_str()] {
        assert!(!log.contains(needle), "{needle:?} in the agent's log: {log}");
        assert!(!cli.stderr.contains(needle), "{needle:?} in the CLI's warnings: {cli:#?}");
    }
    for needle in [PASSWORD, KEY, secret.as_str()] {
        for answer in &answers {
            assert!(!answer.body.contains(needle), "{answer:#?}");
        }
    }
}

#[test]
fn redis_down_the_cli_exits_0_and_the_agent_answers_200() {
    row(&Fault::Down);
}

#[test]
fn redis_slow_the_cli_exits_0_and_the_agent_answers_200() {
    row(&Fault::Slow);
}

#[test]
fn redis_answering_not_resp_the_cli_exits_0_and_the_agent_answers_200() {
    row(&Fault::Garbage(Garbage::NotResp));
}

#[test]
fn redis_answering_wrong_replies_the_cli_exits_0_and_the_agent_answers_200() {
    row(&Fault::Garbage(Garbage::WrongReplies));
}

#[test]
fn redis_announcing_an_endless_value_the_cli_exits_0_and_the_agent_answers_200() {
    row(&Fault::Garbage(Garbage::EndlessBulk));
}
