//! The AWS SDKs' credential provider chain, from aws-config, with its HTTP requests
//! sent by our client (hyper-rustls with ring: no second HTTP or TLS stack) on the
//! runtime that asks for credentials, a worker of the executor.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_config::ecs::EcsCredentialsProvider;
use aws_config::environment::credentials::EnvironmentVariableCredentialsProvider;
use aws_config::imds::credentials::ImdsCredentialsProvider;
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::web_identity_token::WebIdentityTokenCredentialsProvider;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_async::rt::sleep::TokioSleep;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use http_body_util::BodyExt as _;

use super::body::ReqBody;
use super::core::{HttpClient as Client, new_client, tls_config};
use super::credentials::SourceName;

/// What the chain is built from.
pub(crate) struct ChainConfig {
    pub(crate) region: String,
    pub(crate) profile: Option<String>,
    /// Certificate authorities its requests trust beside Mozilla's.
    pub(crate) extra_roots: Arc<[rustls::pki_types::CertificateDer<'static>]>,
    /// The proxy its HTTPS requests (STS) go through, as the backend's do.
    pub(crate) proxy: Option<Arc<super::proxy::Proxy>>,
}

impl ChainConfig {
    /// The chain, in the AWS SDKs' order: environment, shared config and credentials
    /// files (profiles, `assume_role`), web identity, container, instance metadata.
    /// Each link names itself on the credentials it gives.
    pub(crate) async fn build(&self) -> SharedCredentialsProvider {
        let config = ProviderConfig::empty()
            .with_http_client(ProviderHttp {
                tls: tls_config(&self.extra_roots),
                proxy: self.proxy.clone(),
            })
            .with_sleep_impl(TokioSleep::new())
            .with_region(Some(aws_types::region::Region::new(self.region.clone())));
        let mut profile = ProfileFileCredentialsProvider::builder().configure(&config);
        if let Some(name) = &self.profile {
            profile = profile.profile_name(name);
        }
        let chain = CredentialsProviderChain::first_try(
            "Environment",
            Named("environment", EnvironmentVariableCredentialsProvider::new()),
        )
        .or_else("Profile", Named("profile", profile.build()))
        .or_else(
            "WebIdentityToken",
            Named(
                "web-identity",
                WebIdentityTokenCredentialsProvider::builder()
                    .configure(&config)
                    .build(),
            ),
        )
        .or_else(
            "EcsContainer",
            Named(
                "container",
                EcsCredentialsProvider::builder().configure(&config).build(),
            ),
        )
        .or_else(
            "Ec2InstanceMetadata",
            Named(
                "instance-metadata",
                ImdsCredentialsProvider::builder()
                    .configure(&config)
                    .build(),
            ),
        );
        SharedCredentialsProvider::new(chain)
    }
}

/// The region of the selected profile (`AWS_PROFILE`, or `profile`) in the shared
/// config file, if it names one. Reads the (small) files with blocking IO.
pub(crate) fn profile_region(profile: Option<&str>) -> Option<String> {
    let mut builder = aws_config::profile::region::ProfileFileRegionProvider::builder();
    if let Some(name) = profile {
        builder = builder.profile_name(name);
    }
    let provider = builder.build();
    // The provider's file system reads are plain blocking reads: nothing here needs
    // a runtime, and this parker may run inside another executor's `block_on`.
    io_executor::block_on(aws_config::meta::region::ProvideRegion::region(&provider))
        .map(|region| region.as_ref().to_owned())
}

/// The selected profile's [`ProfileEndpoint`](super::config::ProfileEndpoint) (`AWS_PROFILE`, or `profile`), as
/// the SDKs read it. Reads the (small) files with
/// blocking IO; files that cannot be read or parsed say nothing, as of the region.
pub(crate) fn profile_endpoint(profile: Option<&str>) -> super::config::ProfileEndpoint {
    use aws_types::os_shim_internal::{Env, Fs};
    let env = Env::real();
    let files = aws_runtime::env_config::file::EnvConfigFiles::default();
    let selected = profile.map(|p| std::borrow::Cow::Owned(p.to_owned()));
    let profiles = match io_executor::block_on(aws_config::profile::load(
        &Fs::real(),
        &env,
        &files,
        selected,
    )) {
        Ok(profiles) => profiles,
        Err(e) => {
            tracing::warn!(error = %e, "the shared config files cannot be read: no endpoint from them");
            return super::config::ProfileEndpoint::default();
        }
    };
    let ignore = profiles
        .get("ignore_configured_endpoint_urls")
        .map(|v| v.trim().eq_ignore_ascii_case("true"));
    let url = aws_runtime::env_config::EnvConfigValue::new()
        .profile("endpoint_url")
        .service_id("s3")
        .load(&env, Some(&profiles))
        .map(|(url, source)| (url.trim().to_owned(), format!("the {source}")));
    super::config::ProfileEndpoint { ignore, url }
}

/// A link of the chain whose credentials say where they came from, and whose
/// failures say which link failed and where it looked.
#[derive(Debug)]
struct Named<P>(&'static str, P);

impl<P: ProvideCredentials> ProvideCredentials for Named<P> {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            let mut credentials = self
                .1
                .provide_credentials()
                .await
                .map_err(|e| named_error(self.0, e))?;
            credentials.set_property(SourceName(self.0));
            Ok(credentials)
        })
    }
}

/// `err` of link `name`, its kind kept (the chain goes past a link whose
/// credentials are not there), its message saying which link and where it
/// looked (the variables that point it at a file or an endpoint), and no secret
/// the chain read from the environment (aws-config's chain logs the error that
/// stops it). A container endpoint that could not be reached (its agent
/// restarting) is the provider's failure, which may pass, not an unhandled one.
/// (aws-config's instance metadata provider says "not loaded" of an endpoint it
/// cannot reach, and the chain goes on past it.)
fn named_error(name: &str, err: CredentialsError) -> CredentialsError {
    use aws_smithy_types::error::display::DisplayErrorContext;
    let what = match name {
        "web-identity" => "the web identity provider",
        "container" => "the container provider",
        "instance-metadata" => "the instance metadata provider",
        "profile" => "the profile provider",
        "environment" => "the environment provider",
        _ => "a credential provider",
    };
    let looked: Vec<String> = match name {
        "web-identity" => vec!["AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"],
        "container" => vec![
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        ],
        "instance-metadata" => vec!["AWS_EC2_METADATA_SERVICE_ENDPOINT"],
        "profile" => vec![
            "AWS_PROFILE",
            "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE",
        ],
        _ => Vec::new(),
    }
    .into_iter()
    .filter_map(|var| {
        std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .map(|v| format!("{var}={v}"))
    })
    .collect();
    let message = super::credentials::hide_secrets(if looked.is_empty() {
        format!("{what}: {}", DisplayErrorContext(&err))
    } else {
        format!(
            "{what} ({}): {}",
            looked.join(", "),
            DisplayErrorContext(&err)
        )
    });
    match err {
        CredentialsError::CredentialsNotLoaded(_) => CredentialsError::not_loaded(message),
        CredentialsError::InvalidConfiguration(_) => {
            CredentialsError::invalid_configuration(message)
        }
        CredentialsError::ProviderError(_) => CredentialsError::provider_error(message),
        CredentialsError::Unhandled(_) if name == "container" => {
            CredentialsError::provider_error(message)
        }
        CredentialsError::Unhandled(_) => CredentialsError::unhandled(message),
        // A timeout keeps its own kind and duration.
        other => other,
    }
}

/// The chain's HTTP client (metadata services, container endpoints, STS): ours.
#[derive(Debug)]
struct ProviderHttp {
    tls: Arc<rustls::ClientConfig>,
    proxy: Option<Arc<super::proxy::Proxy>>,
}

impl HttpClient for ProviderHttp {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(ProviderConnector {
            client: new_client(
                Arc::clone(&self.tls),
                self.proxy.clone(),
                settings.connect_timeout().unwrap_or(Duration::from_secs(5)),
                1,
            ),
            read_timeout: settings.read_timeout().unwrap_or(Duration::from_secs(30)),
        })
    }
}

/// Sends one request of a credential provider; the (small) answer is read whole.
struct ProviderConnector {
    client: Client,
    read_timeout: Duration,
}

impl fmt::Debug for ProviderConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConnector")
            .field("read_timeout", &self.read_timeout)
            .finish_non_exhaustive()
    }
}

impl HttpConnector for ProviderConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (client, timeout) = (self.client.clone(), self.read_timeout);
        HttpConnectorFuture::new(async move {
            let request = request
                .try_into_http1x()
                .map_err(|e| ConnectorError::other(e.into(), None))?;
            let (parts, body) = request.into_parts();
            let body = body.bytes().map(Bytes::copy_from_slice).ok_or_else(|| {
                ConnectorError::other("a streaming request body cannot be sent".into(), None)
            })?;
            let request = http::Request::from_parts(parts, ReqBody::from(body));
            let response = match tokio::time::timeout(timeout, client.request(request)).await {
                Err(_) => return Err(ConnectorError::timeout("no response in time".into())),
                Ok(Err(e)) => return Err(ConnectorError::io(e.into())),
                Ok(Ok(response)) => response,
            };
            let (parts, body) = response.into_parts();
            let body = match tokio::time::timeout(timeout, body.collect()).await {
                Err(_) => return Err(ConnectorError::timeout("response body stalled".into())),
                Ok(Err(e)) => return Err(ConnectorError::io(e.into())),
                Ok(Ok(body)) => body.to_bytes(),
            };
            HttpResponse::try_from(http::Response::from_parts(parts, SdkBody::from(body)))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}
