//! The application: shared state, the router, start-up and graceful shutdown.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::api::extract::JSON_BODY_LIMIT;
use crate::api::middleware::{self, ApiRateLimiter};
use crate::api::{self, health};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::session::runtime::CallRuntime;
use crate::store::Db;
use crate::webhooks::relay::Relay;

/// Everything a request handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub rate_limiter: Arc<ApiRateLimiter>,
    pub metrics: PrometheusHandle,
    pub clock: Arc<dyn Clock>,
    /// The webhook outbox relay; `wake()` it after committing events.
    pub relay: Arc<Relay>,
    /// Running calls: models, call slots, the dispatcher's wake-up, carriers.
    pub calls: Arc<CallRuntime>,
    /// This node's campaign dialer (its lease name and wake-up).
    pub dialer: Arc<crate::campaigns::Dialer>,
    /// Seals and opens carrier credentials at rest.
    pub secrets: Arc<crate::secrets::SecretBox>,
}

/// The process-wide Prometheus recorder (the `metrics` facade allows one).
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("duration_seconds".into()),
                    &[0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0],
                )
                .expect("valid buckets")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed");
            }
            handle
        })
        .clone()
}

impl AppState {
    pub fn new(db: Db, config: Config, clock: Arc<dyn Clock>, secrets: crate::secrets::SecretBox) -> AppState {
        AppState {
            secrets: Arc::new(secrets),
            relay: Arc::new(Relay::new(db.clone(), clock.clone(), config.allow_insecure_webhooks)),
            calls: Arc::new(CallRuntime::new(&config.telephony)),
            dialer: Arc::new(crate::campaigns::Dialer::default()),
            db,
            rate_limiter: Arc::new(ApiRateLimiter::new(config.rate_limit_per_minute)),
            config: Arc::new(config),
            metrics: metrics_handle(),
            clock,
        }
    }
}

/// Longest a `/v1` request may take, body upload included (a 50 MiB CSV import at 1 MB/s fits).
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The OpenAPI document, rendered once.
pub fn openapi_json() -> String {
    let (_, openapi) = api::v1_router().split_for_parts();
    openapi.to_pretty_json().expect("the OpenAPI document serializes")
}

pub fn router(state: AppState) -> Router {
    let (v1, openapi) = api::v1_router().split_for_parts();
    let openapi = Arc::new(openapi.to_pretty_json().expect("the OpenAPI document serializes"));
    let v1 = v1
        .layer(from_fn_with_state(state.clone(), middleware::idempotency))
        // A slow client (or a slow body) cannot hold a request open past this; the idempotency
        // layer inside finishes a started request's work anyway.
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(|_: tower::BoxError| async {
                    api::error::ApiError::RequestTimeout { secs: REQUEST_TIMEOUT.as_secs() }
                }))
                .timeout(REQUEST_TIMEOUT),
        )
        .layer(from_fn_with_state(state.clone(), middleware::rate_limit))
        .layer(from_fn_with_state(state.clone(), middleware::require_api_key));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route(
            "/v1/openapi.json",
            get(move || {
                let openapi = openapi.clone();
                async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], (*openapi).clone()) }
            }),
        )
        .merge(v1)
        .merge(crate::telephony::twilio::http::router())
        .fallback(health::route_not_found)
        .method_not_allowed_fallback(health::method_not_allowed)
        .layer(from_fn(middleware::track_metrics))
        // A bug in one handler answers that request with a 500 instead of dropping the
        // connection; the panic is logged where it happened.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(api::error::panic_response))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// A bound, migrated server that has not started serving yet.
pub struct App {
    listener: TcpListener,
    state: AppState,
    /// The SIP user agent, bound, when `--sip-listen` is given.
    sip: Option<crate::telephony::sip::agent::SipAgent>,
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<App> {
        App::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// As `build`, with the clock the relay schedules by (tests move it forward).
    pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<App> {
        let db = Db::connect(config.store.database_url.as_deref(), &config.store.data_dir).await?;
        db.migrate().await?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        // With port 0 the kernel picks one; the simulator carrier dials the real address.
        let mut config = config;
        config.listen = listener.local_addr()?;
        let secrets = crate::secrets::SecretBox::load(config.secret_key.as_ref(), &config.store.data_dir)?;
        let sip = match &config.telephony.sip {
            Some(sip) => Some(crate::telephony::sip::agent::SipAgent::bind(sip).await?),
            None => None,
        };
        let state = AppState::new(db, config, clock, secrets);
        if let Some(agent) = &sip {
            let _ = state.calls.sip_address.set(agent.local_addr());
        }
        Ok(App { listener, state, sip })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let housekeeping = tokio::spawn(middleware::housekeeping(self.state.clone()));
        let relay = tokio::spawn(self.state.relay.clone().run());
        // Campaign calls are placed by the dispatcher, so the dialer runs where it does.
        let placing: Vec<_> = if self.state.config.telephony.dispatch_calls {
            vec![
                tokio::spawn(crate::session::dispatcher::run(self.state.clone())),
                tokio::spawn(crate::campaigns::dialer::run(self.state.clone())),
            ]
        } else {
            Vec::new()
        };
        let sip = self.sip.map(|agent| {
            tracing::info!(address = %agent.local_addr(), "answering SIP (UDP and TCP)");
            tokio::spawn(agent.run(self.state.clone()))
        });
        let router = router(self.state.clone());
        crate::serve::serve(self.listener, router, self.state.config.connections, shutdown).await;
        if let Some(sip) = sip {
            sip.abort();
        }
        housekeeping.abort();
        relay.abort();
        for task in placing {
            task.abort();
        }
        self.state.db.close().await;
        Ok(())
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
