//! The `callcenter` binary as a user runs it: keys made beside a running server,
//! configuration errors (exit code 2), env vars, graceful shutdown on SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_callcenter"));
    c.env_remove("CALLCENTER_DATABASE_URL").env_remove("CALLCENTER_LISTEN").env_remove("CALLCENTER_CONFIG");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("binary runs")
}

fn keys_create(data_dir: &Path, account: &str) -> String {
    let out = run(&["keys", "create", "--account", account, "--data-dir", data_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    stdout.lines().last().expect("a key on the last line").trim().to_owned()
}

/// Starts `serve` on port 0 and returns the child and its base URL.
fn serve(args: &[&str]) -> (Child, String) {
    let mut child =
        bin().arg("serve").args(args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn serve");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("listening on ") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    let url = rx.recv_timeout(Duration::from_secs(30)).expect("server printed its URL");
    (child, url)
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().ok();
    panic!("server did not stop on SIGTERM");
}

#[tokio::test]
async fn keys_created_and_revoked_beside_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let first = keys_create(dir.path(), "acme");
    assert!(first.starts_with("cc_live_"), "{first}");
    let (mut server, url) = serve(&["--listen", "127.0.0.1:0", "--data-dir", data]);
    let client = reqwest::Client::new();
    let status = |key: String| {
        let client = client.clone();
        let url = url.clone();
        async move { client.get(format!("{url}/v1/contacts")).bearer_auth(key).send().await.unwrap().status() }
    };
    assert_eq!(status(first.clone()).await, 200);
    // A second key made while the server runs works at once.
    let second = keys_create(dir.path(), "acme");
    assert_eq!(status(second.clone()).await, 200);

    let list = run(&["keys", "list", "--account", "acme", "--data-dir", data]);
    assert!(list.status.success());
    let listing = String::from_utf8(list.stdout).unwrap();
    assert_eq!(listing.lines().count(), 3, "{listing}");
    assert!(!listing.contains(&second[30..]), "secrets are never listed");

    let key_id = second.trim_start_matches("cc_live_").split('_').next().unwrap().to_owned();
    let out = run(&["keys", "revoke", &key_id, "--data-dir", data]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(status(second).await, 401, "revoked keys are rejected at once");
    assert_eq!(status(first).await, 200);

    let exit = terminate(&mut server);
    assert!(exit.success(), "graceful shutdown exits 0, got {exit:?}");
}

#[test]
fn invalid_configuration_fails_with_one_line_and_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let bad_file = dir.path().join("bad.toml");
    std::fs::write(&bad_file, "listen = \"127.0.0.1:0\"\nlisten_port = 3\n").unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["serve", "--listen", "not-an-address", "--data-dir", data],
        vec!["serve", "--data-dir", data, "--database-url", "mysql://u:p@h/db"],
        vec!["serve", "--data-dir", data, "--rate-limit-per-minute", "0"],
        vec!["--config", bad_file.to_str().unwrap(), "serve", "--data-dir", data],
        vec!["--config", "/nonexistent/callcenter.toml", "serve"],
    ];
    for args in cases {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(!stderr.contains(":p@"), "passwords are not echoed: {stderr}");
    }
}

#[test]
fn an_unknown_or_missing_stt_model_stops_serve_at_start_naming_fetch_sh() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let cases: [(&[&str], &str); 2] = [
        (&["serve", "--data-dir", data, "--stt-model", "large-v3"], "'large-v3'"),
        (&["serve", "--data-dir", data, "--models-dir", data, "--stt-model", "base"], "ggml-base.bin"),
    ];
    for (args, what) in cases {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(what) && stderr.contains("models/fetch.sh"), "{stderr}");
    }
}

#[tokio::test]
async fn env_vars_and_config_file_configure_serve() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("callcenter.toml");
    std::fs::write(&config, format!("data_dir = \"{}\"\nrate_limit_per_minute = 2\n", dir.path().display())).unwrap();
    let key = keys_create(dir.path(), "acme");
    let mut child = bin()
        .args(["--config", config.to_str().unwrap(), "serve"])
        .env("CALLCENTER_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("listening on ").expect("URL line").to_owned();
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses
            .push(client.get(format!("{url}/v1/contacts")).bearer_auth(&key).send().await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429], "the file's rate limit applies");
    terminate(&mut child);
}

#[test]
fn help_lists_every_command() {
    let out = run(&["--help"]);
    let help = String::from_utf8(out.stdout).unwrap();
    for command in ["serve", "migrate", "keys"] {
        assert!(help.contains(command), "{help}");
    }
    let out = run(&["keys", "--help"]);
    let help = String::from_utf8(out.stdout).unwrap();
    for command in ["create", "list", "revoke"] {
        assert!(help.contains(command), "{help}");
    }
}

#[test]
fn migrate_and_keys_work_on_postgresql() {
    let admin = std::env::var("CALLCENTER_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://callcenter:callcenter@127.0.0.1:5432/postgres".to_owned());
    let name = format!("cc_cli_{}", std::process::id());
    for sql in [format!("DROP DATABASE IF EXISTS {name}"), format!("CREATE DATABASE {name}")] {
        let out = Command::new("psql").args([admin.as_str(), "-qc", &sql]).output();
        let out = out.expect("psql runs (make test installs postgresql-client)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let out = run(&["migrate", "--database-url", &url]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&["keys", "create", "--account", "acme", "--database-url", &url]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8(out.stdout).unwrap().lines().last().unwrap().starts_with("cc_live_"));
}

#[test]
fn webhooks_verify_checks_both_signature_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body.json");
    std::fs::write(&body, br#"{"test": 2432232314}"#).unwrap();
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let body = body.to_str().unwrap();
    let x = "sha256=80ec8a89ce3cd22133a1066caecb4d04fea7467657c8514d717ec42c38a5c94c";
    let ok = run(&["webhooks", "verify", "--secret", secret, "--body", body, "--signature", x]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));
    let bad = run(&["webhooks", "verify", "--secret", "whsec_b3RoZXI=", "--body", body, "--signature", x]);
    assert_eq!(bad.status.code(), Some(1));
    let std_sig = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    let args = ["--id", "msg_p5jXN8AQM9LWM0D4loKWxJek", "--timestamp", "1614265330"];
    let ok =
        run(&[&["webhooks", "verify", "--secret", secret, "--body", body, "--signature", std_sig][..], &args].concat());
    assert!(ok.status.success());
    let replayed = ["--id", "msg_p5jXN8AQM9LWM0D4loKWxJek", "--timestamp", "1614265331"];
    let bad =
        run(&[&["webhooks", "verify", "--secret", secret, "--body", body, "--signature", std_sig][..], &replayed]
            .concat());
    assert_eq!(bad.status.code(), Some(1));
}
