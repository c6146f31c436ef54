//! The `callcenter` command line: `serve`, `migrate`, `keys`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use callcenter::app::{App, shutdown_signal};
use callcenter::config::{Config, FileConfig, StoreConfig, TelephonyArgs, TelephonyConfig};
use callcenter::domain::Id;
use callcenter::store::{Db, accounts};
use callcenter::webhooks::signing;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "callcenter",
    version,
    about = "AI call center gateway: REST API, media bridges, speech pipeline, webhooks"
)]
struct Cli {
    /// Optional TOML config file (keys: listen, data_dir, database_url, rate_limit_per_minute, allow_insecure_webhooks).
    #[arg(long, global = true, env = "CALLCENTER_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct StoreArgs {
    /// Directory for the embedded SQLite database (default ./data).
    #[arg(long, env = "CALLCENTER_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// postgres://user:pass@host/db to use PostgreSQL instead of SQLite.
    #[arg(long, env = "CALLCENTER_DATABASE_URL")]
    database_url: Option<String>,
}

#[derive(Args, Clone)]
struct TelephonyFlags {
    /// Base URL carriers reach this server at, e.g. https://gw.example.com (Twilio signs
    /// requests over it; default http://LISTEN).
    #[arg(long, env = "CALLCENTER_PUBLIC_URL")]
    public_url: Option<String>,
    /// Directory holding the speech models (default ./models, made by models/fetch.sh).
    #[arg(long, env = "CALLCENTER_MODELS_DIR")]
    models_dir: Option<PathBuf>,
    /// Whisper model for callers' speech: tiny.en (default), tiny.en-q8_0
    /// (`models/fetch.sh --quantized`), base, base-q8_0 or base-q5_1 (`models/fetch.sh --base`);
    /// docs/BENCHMARKS.md compares them.
    #[arg(long, env = "CALLCENTER_STT_MODEL")]
    stt_model: Option<String>,
    /// Calls this node runs at once (default 20); more wait in `queued`.
    #[arg(long, env = "CALLCENTER_MAX_CONCURRENT_CALLS")]
    max_concurrent_calls: Option<usize>,
    /// Twilio account SID: with the auth token, real calls go through Twilio.
    #[arg(long, env = "TWILIO_ACCOUNT_SID")]
    twilio_account_sid: Option<String>,
    /// Twilio auth token: signs /twilio/* requests (without it they are all refused).
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
    twilio_auth_token: Option<String>,
    /// Default `From` number for Twilio calls without a callerId.
    #[arg(long, env = "TWILIO_CALLER_ID")]
    twilio_caller_id: Option<String>,
    /// Twilio REST API base URL (default https://api.twilio.com).
    #[arg(long, env = "TWILIO_API_BASE")]
    twilio_api_base: Option<String>,
    /// Answer SIP on this address, UDP and TCP (e.g. 0.0.0.0:5060); off when absent.
    #[arg(long, env = "CALLCENTER_SIP_LISTEN")]
    sip_listen: Option<String>,
    /// The address written into Contact, Via and SDP behind NAT: IP[:PORT] (default: the
    /// listen address).
    #[arg(long, env = "CALLCENTER_SIP_PUBLIC_ADDRESS")]
    sip_public_address: Option<String>,
    /// RTP ports for SIP calls, FIRST-LAST (default 20000-20999).
    #[arg(long, env = "CALLCENTER_RTP_PORTS")]
    rtp_ports: Option<String>,
    /// Addresses SIP calls are accepted from, comma-separated CIDRs (default 127.0.0.0/8,::1;
    /// put the trunk's addresses here).
    #[arg(long, env = "CALLCENTER_SIP_ALLOW")]
    sip_allow: Option<String>,
}

// Parsed once at start-up: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the gateway (applies pending migrations first).
    Serve {
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long, env = "CALLCENTER_LISTEN")]
        listen: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
        /// Requests per minute allowed per API key (default 100).
        #[arg(long, env = "CALLCENTER_RATE_LIMIT_PER_MINUTE")]
        rate_limit_per_minute: Option<u32>,
        /// Allow http:// webhook URLs and internal addresses, http only for loopback
        /// receivers (local development and tests).
        #[arg(long, env = "CALLCENTER_ALLOW_INSECURE_WEBHOOKS")]
        allow_insecure_webhooks: bool,
        /// Require `Authorization: Bearer <token>` on /metrics (default: open, for a scraper
        /// on a private network).
        #[arg(long, env = "CALLCENTER_METRICS_TOKEN", hide_env_values = true)]
        metrics_token: Option<String>,
        /// The key carrier credentials are sealed with at rest: 32 bytes as 64 hex digits or
        /// base64. Default: one made on first start in DATA_DIR/secret.key. Nodes that share
        /// a PostgreSQL database must all be given the same key.
        #[arg(long, env = "CALLCENTER_SECRET_KEY", hide_env_values = true)]
        secret_key: Option<String>,
        #[command(flatten)]
        telephony: TelephonyFlags,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Manage API keys (works beside a running server).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Receiver-side helpers for webhooks.
    Webhooks {
        #[command(subcommand)]
        command: WebhooksCommand,
    },
    /// Transcribe a WAV or MP3 file (any sample rate, mono or stereo) with whisper; the text
    /// goes to stdout.
    Transcribe {
        /// The audio file.
        file: PathBuf,
        /// Directory holding the models (default ./models, made by models/fetch.sh).
        #[arg(long, env = "CALLCENTER_MODELS_DIR", default_value = "models")]
        models_dir: PathBuf,
        /// Whisper model, as `serve --stt-model` takes it (default tiny.en).
        #[arg(long, alias = "stt-model", env = "CALLCENTER_STT_MODEL", default_value = callcenter::speech::models::DEFAULT_STT_MODEL)]
        model: String,
        /// Print one line per segment with its start and end time.
        #[arg(long)]
        segments: bool,
    },
    /// Speak a text with a Piper voice into a WAV file.
    Say {
        /// What to say.
        text: String,
        /// The WAV file to write (16-bit mono at the voice's rate, or at --rate).
        #[arg(short, long)]
        output: PathBuf,
        /// Piper voice name in <models>/voices (default en_US-joe-medium).
        #[arg(long)]
        voice: Option<String>,
        /// Resample to this rate, e.g. 8000 to hear it as a phone line would carry it.
        #[arg(long)]
        rate: Option<u32>,
        #[arg(long, env = "CALLCENTER_MODELS_DIR", default_value = "models")]
        models_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum WebhooksCommand {
    /// Check a delivery's signature: `X-Signature` (sha256=...) or, with --id and
    /// --timestamp, `webhook-signature` (v1,...). Exit code 0 when valid, 1 when not.
    Verify {
        /// The endpoint secret (whsec_...).
        #[arg(long, env = "CALLCENTER_WEBHOOK_SECRET")]
        secret: String,
        /// File holding the raw request body, byte for byte.
        #[arg(long)]
        body: PathBuf,
        /// The X-Signature or webhook-signature header value.
        #[arg(long)]
        signature: String,
        /// The webhook-id header (for webhook-signature).
        #[arg(long)]
        id: Option<String>,
        /// The webhook-timestamp header (for webhook-signature).
        #[arg(long)]
        timestamp: Option<i64>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key (and the account if needed); the key is the last line of stdout.
    Create {
        #[arg(long)]
        account: String,
        /// A label for the key.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List an account's keys.
    List {
        #[arg(long)]
        account: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a key by its id; it is rejected at once.
    Revoke {
        key_id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Exit code for invalid configuration or usage.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    // Read by ONNX Runtime's Linux builds when the library loads; set while the process is
    // still single-threaded (setting the environment later would race other threads).
    // SAFETY: no other thread exists yet.
    unsafe { std::env::set_var("ORT_DISABLE_TELEMETRY", "1") };
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CALLCENTER_LOG")
                // rsipstack logs every SIP datagram's raw text at info.
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=warn,whisper_rs=warn,rsipstack=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let file = match FileConfig::load(cli.config.as_deref()) {
        Ok(f) => f,
        Err(e) => return config_error(e),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli.command, file))
}

fn config_error(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(EXIT_CONFIG)
}

fn store_config(args: StoreArgs, file: &FileConfig) -> Result<StoreConfig, ExitCode> {
    StoreConfig::resolve(args.data_dir, args.database_url, file).map_err(config_error)
}

async fn open(store: &StoreConfig) -> anyhow::Result<Db> {
    let db = Db::connect(store.database_url.as_deref(), &store.data_dir).await?;
    db.migrate().await?;
    Ok(db)
}

async fn run(command: Command, file: FileConfig) -> ExitCode {
    let result = match command {
        Command::Serve {
            listen,
            store,
            rate_limit_per_minute,
            allow_insecure_webhooks,
            metrics_token,
            secret_key,
            telephony,
        } => {
            let store = match store_config(store, &file) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let mut config = match Config::resolve(listen, store, rate_limit_per_minute, allow_insecure_webhooks, &file)
            {
                Ok(c) => c,
                Err(e) => return config_error(e),
            };
            config.metrics_token = metrics_token.filter(|t| !t.is_empty());
            if let Some(key) = secret_key.filter(|k| !k.is_empty()) {
                config.secret_key = Some(callcenter::secrets::KeyText(key));
            }
            let args = TelephonyArgs {
                public_url: telephony.public_url,
                models_dir: telephony.models_dir,
                stt_model: telephony.stt_model,
                max_concurrent_calls: telephony.max_concurrent_calls,
                twilio_account_sid: telephony.twilio_account_sid,
                twilio_auth_token: telephony.twilio_auth_token,
                twilio_caller_id: telephony.twilio_caller_id,
                twilio_api_base: telephony.twilio_api_base,
                sip_listen: telephony.sip_listen,
                sip_public_address: telephony.sip_public_address,
                rtp_ports: telephony.rtp_ports,
                sip_allow: telephony.sip_allow,
            };
            config.telephony = match TelephonyConfig::resolve(args, &file) {
                Ok(t) => t,
                Err(e) => return config_error(e),
            };
            // The models load on the first call; a missing whisper file is said now, not then.
            let models = callcenter::speech::ModelPaths::new(&config.telephony.models_dir);
            if let Err(e) = config.telephony.stt_model.require(&models) {
                return config_error(e);
            }
            serve(config).await
        }
        Command::Migrate { store } => match store_config(store, &file) {
            Ok(store) => open(&store).await.map(|_| println!("migrations applied")),
            Err(code) => return code,
        },
        Command::Keys { command } => keys(command, &file).await,
        Command::Webhooks { command: WebhooksCommand::Verify { secret, body, signature, id, timestamp } } => {
            return verify_webhook(&secret, &body, &signature, id.as_deref(), timestamp);
        }
        Command::Transcribe { file, models_dir, model, segments } => {
            return speech_command(move || transcribe(&file, &models_dir, &model, segments)).await;
        }
        Command::Say { text, output, voice, rate, models_dir } => {
            return speech_command(move || say(&text, &output, voice.as_deref(), rate, &models_dir)).await;
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn verify_webhook(secret: &str, body: &Path, signature: &str, id: Option<&str>, timestamp: Option<i64>) -> ExitCode {
    let body = match std::fs::read(body) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", body.display());
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let result = if signature.trim_start().starts_with("sha256=") {
        signing::verify_x_signature(secret, &body, signature)
    } else {
        match (id, timestamp) {
            (Some(id), Some(ts)) => signing::verify_standard(secret, id, ts, &body, signature),
            _ => {
                eprintln!("error: a webhook-signature needs --id and --timestamp");
                return ExitCode::from(EXIT_CONFIG);
            }
        }
    };
    match result {
        Ok(()) => {
            println!("valid");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("invalid: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = App::build(config).await?;
    // Scripts and tests read this line to learn the port when listening on port 0.
    println!("listening on http://{}", app.local_addr());
    tracing::info!(addr = %app.local_addr(), "serving");
    app.run(shutdown_signal()).await
}

async fn keys(command: KeysCommand, file: &FileConfig) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create { account, name, store } => {
            let store = StoreConfig::resolve(store.data_dir, store.database_url, file)?;
            let db = open(&store).await?;
            let account = account.trim();
            anyhow::ensure!(!account.is_empty(), "--account must not be empty");
            let account_id = accounts::ensure_account(&db, account).await?;
            let (record, key) = accounts::create_key(&db, &account_id, name.as_deref()).await?;
            println!("account: {account} ({account_id})");
            println!("key id: {}", record.id);
            println!("{key}");
        }
        KeysCommand::List { account, store } => {
            let store = StoreConfig::resolve(store.data_dir, store.database_url, file)?;
            let db = open(&store).await?;
            let Some(account_id) = accounts::find_account(&db, &account).await? else {
                anyhow::bail!("no account named '{account}'");
            };
            println!("{:<24}  {:<20}  {:<20}  {:<20}  NAME", "KEY ID", "CREATED", "LAST USED", "REVOKED");
            for k in accounts::list_keys(&db, &account_id).await? {
                println!(
                    "{:<24}  {:<20}  {:<20}  {:<20}  {}",
                    k.id,
                    k.created_at,
                    k.last_used_at.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
                    k.revoked_at.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
                    k.name.unwrap_or_default()
                );
            }
        }
        KeysCommand::Revoke { key_id, store } => {
            let store = StoreConfig::resolve(store.data_dir, store.database_url, file)?;
            let db = open(&store).await?;
            let id = Id::parse(&key_id).map_err(|e| anyhow::anyhow!("key id '{key_id}' {e}"))?;
            match accounts::revoke_key(&db, &id, None).await? {
                Some(k) => println!("revoked {} at {}", k.id, k.revoked_at.map(|t| t.to_string()).unwrap_or_default()),
                None => anyhow::bail!("no key with id {key_id}"),
            }
        }
    }
    Ok(())
}

/// Runs a blocking speech command off the async runtime; errors print one line, exit 1.
async fn speech_command(work: impl FnOnce() -> anyhow::Result<()> + Send + 'static) -> ExitCode {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn transcribe(file: &Path, models_dir: &Path, model: &str, segments: bool) -> anyhow::Result<()> {
    use callcenter::media::decode::{MAX_DURATION_SECS, decode_file, resample_clip};
    use callcenter::speech::stt::{SttConfig, SttPool};
    use callcenter::speech::{ModelPaths, SttModel};

    let model = SttModel::named(model)?.require(&ModelPaths::new(models_dir))?;
    let audio = decode_file(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let audio_16k = resample_clip(&audio.samples, audio.sample_rate, 16_000)?;
    let config = SttConfig { max_clip: std::time::Duration::from_secs(MAX_DURATION_SECS), ..SttConfig::default() };
    let pool = SttPool::new(&model, config)?;
    let transcript = pool.transcribe_blocking(audio_16k)?;
    if segments {
        for segment in &transcript.segments {
            let at = |ms: u32| format!("{:02}:{:02}.{:03}", ms / 60_000, ms / 1000 % 60, ms % 1000);
            println!("[{} --> {}] {}", at(segment.start_ms), at(segment.end_ms), segment.text.trim());
        }
    } else {
        println!("{}", transcript.text);
    }
    Ok(())
}

fn say(text: &str, output: &Path, voice: Option<&str>, rate: Option<u32>, models_dir: &Path) -> anyhow::Result<()> {
    use callcenter::speech::ModelPaths;
    use callcenter::speech::tts::{TtsConfig, TtsPool};

    let mut config = TtsConfig::default();
    if let Some(voice) = voice {
        config.default_voice = voice.to_owned();
    }
    if let Some(rate) = rate
        && !(4000..=192_000).contains(&rate)
    {
        anyhow::bail!("--rate {rate}: expected a sample rate between 4000 and 192000 Hz");
    }
    // The pool resamples each sentence itself when asked for another rate.
    config.output_rate = rate;
    let pool = TtsPool::new(&ModelPaths::new(models_dir), config)?;
    let synthesis = pool.synthesize_blocking(None, text)?;
    let (samples, sample_rate) = (synthesis.samples, synthesis.sample_rate);
    let spec =
        hound::WavSpec { channels: 1, sample_rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut writer =
        hound::WavWriter::create(output, spec).map_err(|e| anyhow::anyhow!("{}: {e}", output.display()))?;
    for sample in &samples {
        writer.write_sample(*sample)?;
    }
    writer.finalize()?;
    eprintln!(
        "wrote {} ({:.2} s at {sample_rate} Hz)",
        output.display(),
        samples.len() as f64 / f64::from(sample_rate)
    );
    Ok(())
}
