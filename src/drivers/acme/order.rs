//! One order: each authorization answered over HTTP-01 through
//! `Challenges`, the order polled with capped backoff until ready,
//! finalized with a fresh key, and its chain fetched. The caller withdraws
//! what `Published` recorded, whatever the outcome.

use std::sync::Mutex;
use std::time::Duration;

use instant_acme::{Account, AuthorizationStatus, ChallengeType, Identifier, NewOrder, Order, OrderStatus};
use tokio::time::Instant;

use super::account;
use super::error::{from_acme, is_unknown_account, problem_text, AcmeError};
use super::key::key_and_csr;
use super::types::{AcmeSettings, Challenges, Issued};

/// The first wait between two looks at the order, doubled up to `MAX_DELAY`.
const FIRST_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(5);

/// Tokens handed to `Challenges::publish`, to withdraw afterwards.
#[derive(Default)]
pub(crate) struct Published(Mutex<Vec<String>>);

impl Published {
    fn record(&self, token: &str) {
        self.0.lock().expect("not poisoned").push(token.to_string());
    }

    /// Every recorded token, forgetting them.
    pub(crate) fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().expect("not poisoned"))
    }
}

/// Orders a certificate for `names` (already checked) with `account`.
pub(crate) async fn run(
    settings: &AcmeSettings,
    account: &Account,
    names: &[String],
    challenges: &dyn Challenges,
    published: &Published,
) -> Result<Issued, AcmeError> {
    let ids: Vec<Identifier> = names.iter().map(|n| Identifier::Dns(n.clone())).collect();
    let mut order = account
        .new_order(&NewOrder::new(&ids))
        .await
        .map_err(|e| new_order_error(settings, e))?;
    authorize(&mut order, settings, challenges, published).await?;
    let deadline = Instant::now() + settings.timeout;
    wait(&mut order, settings, names, deadline, OrderStatus::Ready).await?;
    let (key_pem, csr) = key_and_csr(names).map_err(|e| AcmeError::Key {
        names: names.join(", "),
        cause: e.to_string(),
    })?;
    let fail = |e| from_acme(&settings.directory, e);
    order.finalize_csr(&csr).await.map_err(fail)?;
    wait(&mut order, settings, names, deadline, OrderStatus::Valid).await?;
    let chain_pem = order
        .certificate()
        .await
        .map_err(fail)?
        .ok_or_else(|| AcmeError::Protocol {
            directory: settings.directory.clone(),
            cause: "a valid order without a certificate".into(),
        })?;
    Ok(Issued { chain_pem, key_pem })
}

fn new_order_error(settings: &AcmeSettings, e: instant_acme::Error) -> AcmeError {
    if !is_unknown_account(&e) {
        return from_acme(&settings.directory, e);
    }
    AcmeError::UnknownAccount {
        directory: settings.directory.clone(),
        path: account::path(settings),
        cause: e.to_string(),
    }
}

/// Publishes each pending authorization's HTTP-01 answer, then tells the
/// server it is ready.
async fn authorize(
    order: &mut Order,
    settings: &AcmeSettings,
    challenges: &dyn Challenges,
    published: &Published,
) -> Result<(), AcmeError> {
    let directory = settings.directory.as_str();
    let mut authorizations = order.authorizations();
    while let Some(next) = authorizations.next().await {
        let mut authz = next.map_err(|e| from_acme(directory, e))?;
        let domain = authz.identifier().to_string();
        match authz.status {
            AuthorizationStatus::Valid => continue,
            AuthorizationStatus::Pending => {}
            other => {
                return Err(AcmeError::Invalid {
                    directory: directory.to_string(),
                    domain,
                    problem: format!("its authorization is {other:?}"),
                })
            }
        }
        let mut challenge = authz
            .challenge(ChallengeType::Http01)
            .ok_or_else(|| AcmeError::Protocol {
                directory: directory.to_string(),
                cause: format!("no http-01 challenge offered for {domain}"),
            })?;
        let key_authorization = challenge.key_authorization();
        published.record(&challenge.token);
        let publish = challenges.publish(&challenge.token, key_authorization.as_str());
        let publish_failed = |cause| AcmeError::Publish {
            domain: domain.clone(),
            cause,
        };
        match tokio::time::timeout(settings.timeout, publish).await {
            Ok(Ok(())) => {}
            Ok(Err(cause)) => return Err(publish_failed(cause)),
            Err(_) => return Err(publish_failed(format!("no answer in {:?}", settings.timeout))),
        }
        challenge.set_ready().await.map_err(|e| match e {
            instant_acme::Error::Api(p) => AcmeError::Invalid {
                directory: directory.to_string(),
                domain: domain.clone(),
                problem: problem_text(&p),
            },
            other => from_acme(directory, other),
        })?;
    }
    Ok(())
}

/// Polls the order until it is `want`, invalid, or `deadline` passes.
async fn wait(
    order: &mut Order,
    settings: &AcmeSettings,
    names: &[String],
    deadline: Instant,
    want: OrderStatus,
) -> Result<(), AcmeError> {
    let mut delay = FIRST_DELAY;
    loop {
        let state = order.refresh().await.map_err(|e| from_acme(&settings.directory, e))?;
        match state.status {
            OrderStatus::Invalid => return Err(invalid(order, settings, names).await),
            status if status == want => return Ok(()),
            // Ready before Valid is the normal path, and `want` Ready
            // seen as Valid means the server finalized on its own.
            OrderStatus::Valid => return Ok(()),
            _ => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(AcmeError::Timeout {
                directory: settings.directory.clone(),
                names: names.join(", "),
                after: settings.timeout,
            });
        }
        tokio::time::sleep(delay.min(deadline - now)).await;
        delay = (delay * 2).min(MAX_DELAY);
    }
}

/// Why the order went invalid: the first failed authorization's
/// challenge error, naming its domain, else the order's own problem.
async fn invalid(order: &mut Order, settings: &AcmeSettings, names: &[String]) -> AcmeError {
    let order_problem = order.state().error.as_ref().map(problem_text);
    let fallback = order_problem
        .clone()
        .unwrap_or_else(|| "the server gave no reason".to_string());
    let mut authorizations = order.authorizations();
    while let Some(Ok(authz)) = authorizations.next().await {
        if authz.status != AuthorizationStatus::Invalid {
            continue;
        }
        let problem = authz
            .challenges
            .iter()
            .find_map(|c| c.error.as_ref())
            .map(problem_text)
            .unwrap_or(fallback);
        return AcmeError::Invalid {
            directory: settings.directory.clone(),
            domain: authz.identifier().to_string(),
            problem,
        };
    }
    AcmeError::Invalid {
        directory: settings.directory.clone(),
        domain: names.join(", "),
        problem: fallback,
    }
}
