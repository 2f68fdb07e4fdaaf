//! Building middlewares from their definitions: one object per middleware per snapshot,
//! `chain`s flattened, reference cycles refused.

use std::any::Any;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use viaduct_upstream::ServiceNode;

use crate::buffering;
use crate::chain::{Chain, Middleware};
use crate::circuit_breaker;
use crate::compress;
use crate::errors;
use crate::grpc_web;
use crate::in_flight_req;
use crate::rate_limit;
use crate::retry;
use crate::state::StateStore;
use crate::{add_prefix, strip_prefix};

/// The merged configuration's middlewares, by qualified name.
pub type MiddlewareDefinitions = BTreeMap<String, viaduct_config::Middleware>;

/// A middleware as the objects it runs: itself, or a chain's members.
type Flattened = Arc<[Arc<dyn Middleware>]>;

/// Gives middlewares that call a service of their own (`errors`) the compiled service.
pub trait ServiceResolver {
    fn service(&mut self, name: &str) -> Result<Arc<ServiceNode>, String>;
}

/// Builds the chains of one snapshot. Each middleware is built once, however many routers
/// and chains use it.
pub struct MiddlewareBuilder<'a> {
    definitions: &'a MiddlewareDefinitions,
    previous_state: Option<&'a StateStore>,
    state: StateStore,
    built: HashMap<String, Result<Flattened, String>>,
    in_progress: HashSet<String>,
    note_users: bool,
}

impl<'a> MiddlewareBuilder<'a> {
    /// `previous_state` is the last snapshot's store: stateful middlewares resume from it.
    pub fn new(
        definitions: &'a MiddlewareDefinitions,
        previous_state: Option<&'a StateStore>,
    ) -> Self {
        MiddlewareBuilder {
            definitions,
            previous_state,
            state: StateStore::default(),
            built: HashMap::new(),
            in_progress: HashSet::new(),
            note_users: false,
        }
    }

    /// Whether authentication middlewares note the user on responses
    /// ([`viaduct_observe::ClientUsername`]): only worth it when an access log reads it.
    pub fn noting_users(mut self, on: bool) -> Self {
        self.note_users = on;
        self
    }

    /// The chain for a router's (qualified) middleware names, in order. The error names the
    /// middleware at fault and why.
    pub fn chain(
        &mut self,
        names: &[String],
        services: &mut dyn ServiceResolver,
    ) -> Result<Chain, String> {
        let mut all = Vec::new();
        for name in names {
            all.extend(self.flattened(name, services)?.iter().cloned());
        }
        Ok(Chain::new(all))
    }

    /// Builds every definition, for reporting the ones no router uses but that are broken.
    pub fn check_all(&mut self, services: &mut dyn ServiceResolver) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        for name in self.definitions.keys() {
            if let Err(e) = self.flattened(name, services) {
                errors.push((name.clone(), e));
            }
        }
        errors
    }

    /// The state to hand to the next snapshot's builder.
    pub fn into_state(self) -> StateStore {
        self.state
    }

    /// Middleware `name` as the list of objects it runs (one, or a chain's members).
    fn flattened(
        &mut self,
        name: &str,
        services: &mut dyn ServiceResolver,
    ) -> Result<Flattened, String> {
        if let Some(done) = self.built.get(name) {
            return done.clone();
        }
        if !self.in_progress.insert(name.to_string()) {
            return Err(format!("middleware {name:?} is part of a reference cycle"));
        }
        let result = self.build_uncached(name, services);
        self.in_progress.remove(name);
        self.built.insert(name.to_string(), result.clone());
        result
    }

    fn build_uncached(
        &mut self,
        name: &str,
        services: &mut dyn ServiceResolver,
    ) -> Result<Flattened, String> {
        let definition = self
            .definitions
            .get(name)
            .ok_or_else(|| format!("middleware {name:?} does not exist"))?;
        let kinds = definition.kinds();
        let (kind, options) = match kinds.as_slice() {
            [one] => *one,
            [] => return Err(format!("middleware {name:?} has no type")),
            _ => {
                let names: Vec<&str> = kinds.iter().map(|(k, _)| *k).collect();
                return Err(format!(
                    "middleware {name:?} has more than one type ({})",
                    names.join(", ")
                ));
            }
        };
        if kind == "chain" {
            return self.chain_members(name, options, services);
        }
        let mut ctx = BuildContext {
            name,
            state: &self.state,
            previous_state: self.previous_state,
            services,
            note_users: self.note_users,
        };
        build_kind(kind, options, &mut ctx)
            .map(|m| Arc::from(vec![m]))
            .map_err(|e| format!("middleware {name:?} ({kind}): {e}"))
    }

    fn chain_members(
        &mut self,
        name: &str,
        options: &serde_json::Value,
        services: &mut dyn ServiceResolver,
    ) -> Result<Flattened, String> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        struct ChainOptions {
            #[serde(default)]
            middlewares: Vec<String>,
        }
        let chain: ChainOptions = crate::options::decode(options)
            .map_err(|e| format!("middleware {name:?} (chain): {e}"))?;
        let mut all = Vec::new();
        for member in &chain.middlewares {
            all.extend(self.flattened(member, services)?.iter().cloned());
        }
        Ok(all.into())
    }
}

/// What a middleware's `build` may use besides its options.
pub(crate) struct BuildContext<'b> {
    /// The middleware's qualified name.
    pub name: &'b str,
    state: &'b StateStore,
    previous_state: Option<&'b StateStore>,
    pub services: &'b mut dyn ServiceResolver,
    /// See [`MiddlewareBuilder::noting_users`].
    pub note_users: bool,
}

impl BuildContext<'_> {
    /// State kept across reloads for this middleware (see [`StateStore::carry`]).
    pub fn carry<T: Any + Send + Sync>(
        &self,
        kind: &'static str,
        create: impl FnOnce() -> T,
    ) -> Arc<T> {
        self.state
            .carry(self.previous_state, self.name, kind, create)
    }
}

/// One arm per middleware type: options in, prepared middleware out.
fn build_kind(
    kind: &str,
    options: &serde_json::Value,
    ctx: &mut BuildContext<'_>,
) -> Result<Arc<dyn Middleware>, String> {
    match kind {
        "addPrefix" => add_prefix::build(options),
        "stripPrefix" => strip_prefix::build(options),
        "headers" => crate::headers::build(options, ctx.name),
        "redirectScheme" => crate::redirect_scheme::build(options),
        "redirectRegex" => crate::redirect_regex::build(options),
        "replacePath" => crate::replace_path::build(options),
        "replacePathRegex" => crate::replace_path_regex::build(options),
        "stripPrefixRegex" => crate::strip_prefix_regex::build(options),
        "ipAllowList" => crate::ip_allow_list::build(options),
        "ipWhiteList" => crate::ip_allow_list::build_white_list(options),
        "basicAuth" => crate::basic_auth::build(options, ctx.note_users),
        "digestAuth" => crate::digest_auth::build(options, ctx.note_users),
        "contentType" => crate::content_type::build(options, ctx.name),
        "encodedCharacters" => crate::encoded_characters::build(options),
        "passTLSClientCert" => crate::pass_tls_client_cert::build(options),
        "forwardAuth" => crate::forward_auth::build(options, ctx),
        "rateLimit" => rate_limit::build(options, ctx),
        "inFlightReq" => in_flight_req::build(options, ctx),
        "retry" => retry::build(options),
        "circuitBreaker" => circuit_breaker::build(options, ctx),
        "compress" => compress::build(options),
        "buffering" => buffering::build(options),
        "errors" => errors::build(options, ctx),
        "grpcWeb" => grpc_web::build(options),
        "plugin" => Err("plugins are not supported".into()),
        other => Err(format!("the {other} middleware is not supported yet")),
    }
}
