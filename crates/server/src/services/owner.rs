//! Who owns what. With API keys configured, every collection (with its documents), ingestion
//! job, session and conversation belongs to the key, by name, that created it: another key
//! gets 404 for it and never sees it in a list. The store keeps an object of key `alice` under
//! `alice/NAME` (conversations and jobs record the owner beside the id); admin keys, and the
//! open mode without keys, own the unprefixed names (what existed before keys were set up)
//! and see every key's objects, naming another key's as `alice/NAME`.
//!
//! A key scoped to models (`models=a,b`) resolves, lists and uses only those: another model
//! is 404 to it, and an empty `model` means the first of its models when the server's
//! default is not among them. Retrieval's embedding model is the server's, not the client's
//! choice: every key that may use retrieval embeds with it, and its tokens are charged to the
//! key like any other ([`Principal::charge`]).

use crate::http::auth::Caller;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use hearth_engine::{EngineError, KeepAlive, ModelHandle, ModelInfo, ModelKind, ModelManager};
use std::convert::Infallible;

pub use hearth_rag::store::valid_owner;

/// A stored name split into its owner (`""`: admins' and the open mode's) and the name the
/// owner uses.
pub fn split(stored: &str) -> (&str, &str) {
    match stored.split_once('/') {
        Some((owner, rest)) if valid_owner(owner) => (owner, rest),
        _ => ("", stored),
    }
}

/// The stored name of `owner`'s `name`.
pub fn join(owner: &str, name: &str) -> String {
    if owner.is_empty() {
        name.to_string()
    } else {
        format!("{owner}/{name}")
    }
}

/// The caller of a request as owner: `None` in the open mode (no keys configured).
#[derive(Debug, Clone, Default)]
pub struct Principal(Option<Caller>);

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Principal(parts.extensions.get::<Caller>().cloned()))
    }
}

impl Principal {
    /// The owner of `caller`'s requests (`None`: open mode).
    pub fn of(caller: Option<&Caller>) -> Self {
        Principal(caller.cloned())
    }

    /// Counts `tokens` of work done for this caller against its key's tokens/minute (nothing
    /// in the open mode).
    pub fn charge(&self, tokens: u64) {
        if let Some(c) = &self.0 {
            c.charge(tokens);
        }
    }

    /// The owner recorded for what this caller creates: its key's name, `""` for an admin key
    /// or the open mode.
    pub fn owner(&self) -> &str {
        match &self.0 {
            Some(c) if !c.admin => &c.name,
            _ => "",
        }
    }

    /// The key that identified the caller (never in the open mode).
    pub fn caller(&self) -> Option<&Caller> {
        self.0.as_ref()
    }

    /// Whether a key identified the caller (never in the open mode).
    pub fn has_key(&self) -> bool {
        self.0.is_some()
    }

    /// Whether it sees every owner's objects (an admin key, or no keys at all).
    pub fn sees_all(&self) -> bool {
        self.0.as_ref().is_none_or(|c| c.admin)
    }

    /// Whether an object recorded for `owner` is visible to this caller.
    pub fn may_see(&self, owner: &str) -> bool {
        self.sees_all() || owner == self.owner()
    }

    /// The owner and name of an object this caller names: its own, or for an admin
    /// `alice/NAME`, another key's.
    pub fn locate<'a>(&'a self, named: &'a str) -> (&'a str, &'a str) {
        if self.sees_all() {
            split(named)
        } else {
            (self.owner(), named)
        }
    }

    /// The stored name of an object this caller names.
    pub fn qualify(&self, named: &str) -> String {
        let (owner, name) = self.locate(named);
        join(owner, name)
    }

    /// How a stored name appears to this caller: bare for its own objects, `owner/NAME` for
    /// another's that it may see, `None` for one it may not.
    pub fn show(&self, stored: &str) -> Option<String> {
        let (owner, name) = split(stored);
        if owner == self.owner() {
            Some(name.to_string())
        } else {
            self.sees_all().then(|| stored.to_string())
        }
    }

    /// The stored objects this caller may see, each with its name (`name`) as it sees it.
    pub fn visible<T>(&self, items: Vec<T>, name: impl Fn(&mut T) -> &mut String) -> Vec<T> {
        items
            .into_iter()
            .filter_map(|mut item| {
                let shown = self.show(name(&mut item))?;
                *name(&mut item) = shown;
                Some(item)
            })
            .collect()
    }

    /// Whether it may load and unload models at will (an admin key, or no keys at all). Other
    /// keys' `keep_alive` may keep a model longer than the server's default, never shorter.
    pub fn manages_models(&self) -> bool {
        self.sees_all()
    }

    /// Refuses a caller whose key is limited to some models (`models=`) an operation that
    /// adds models (a pull): what it would add is outside its scope.
    ///
    /// # Errors
    /// 403 naming the limit.
    pub fn may_add_models(&self) -> Result<(), crate::http::error::ApiError> {
        match self.0.as_ref().and_then(|c| c.models.as_deref()) {
            Some(_) => Err(crate::http::error::ApiError::Forbidden(
                "this API key may use only the models its `models=` names; pulling another model needs a key without that limit".into(),
            )),
            None => Ok(()),
        }
    }

    /// The models this caller may use.
    pub fn models<'a>(&'a self, manager: &'a ModelManager) -> Scoped<'a> {
        Scoped { manager, allow: self.0.as_ref().and_then(|c| c.models.as_deref()), manages: self.manages_models() }
    }
}

/// A model manager seen through a key's model scope.
pub struct Scoped<'a> {
    manager: &'a ModelManager,
    allow: Option<&'a [String]>,
    manages: bool,
}

impl<'a> Scoped<'a> {
    /// Whether the scope includes model `id`.
    pub fn allows(&self, id: &str) -> bool {
        self.allow.is_none_or(|a| a.iter().any(|m| m == id))
    }

    /// Resolves `name` (empty: the default model, or the scope's first when the default is
    /// outside it); a model outside the scope is not found.
    ///
    /// # Errors
    /// [`EngineError::ModelNotFound`], [`EngineError::NoDefaultModel`].
    pub fn resolve(&self, name: &str) -> Result<ModelInfo, EngineError> {
        let name = match (name.trim(), self.allow) {
            ("", Some(allow)) if !self.manager.default_model().is_some_and(|d| self.allows(d)) => {
                allow.first().map_or("", String::as_str)
            }
            (n, _) => n,
        };
        let info = self.manager.resolve(name)?;
        if !self.allows(&info.id) {
            return Err(EngineError::ModelNotFound { model: name.to_string() });
        }
        Ok(info)
    }

    /// [`Scoped::resolve`], refusing a model of another kind than `want` (without loading it).
    ///
    /// # Errors
    /// As [`Scoped::resolve`], and [`EngineError::WrongModelKind`].
    pub fn resolve_as(&self, name: &str, want: ModelKind) -> Result<ModelInfo, EngineError> {
        let info = self.resolve(name)?;
        hearth_engine::manager::check_kind(&info, Some(want))?;
        Ok(info)
    }

    /// [`ModelManager::acquire`] within the scope; for a caller that does not manage models, a
    /// `keep_alive` shorter than the server's default is the default (so no key can unload a
    /// model that others use).
    ///
    /// # Errors
    /// As [`Scoped::resolve`] and [`ModelManager::acquire`].
    pub async fn acquire(
        &self,
        name: &str,
        want: Option<ModelKind>,
        keep_alive: KeepAlive,
    ) -> Result<ModelHandle, EngineError> {
        self.acquire_placed(name, want, keep_alive, None).await
    }

    /// [`Scoped::acquire`] with the model placed as `gpu` says (Ollama's `num_gpu`), when given
    /// by a caller that manages models; for others the model stays as it is loaded (a key may
    /// not make a model that others use load again).
    ///
    /// # Errors
    /// As [`Scoped::acquire`].
    pub async fn acquire_placed(
        &self,
        name: &str,
        want: Option<ModelKind>,
        keep_alive: KeepAlive,
        gpu: Option<hearth_engine::gpu::GpuLayers>,
    ) -> Result<ModelHandle, EngineError> {
        let id = self.resolve(name)?.id;
        let keep_alive =
            if self.manages { keep_alive } else { keep_alive.no_sooner_than(self.manager.settings().idle_unload) };
        let gpu = gpu.filter(|_| self.manages);
        self.manager.acquire_placed(&id, want, keep_alive, gpu).await
    }

    /// Every model in the scope, sorted by id.
    pub fn list(&self) -> Vec<ModelInfo> {
        self.manager.models().into_iter().filter(|m| self.allows(&m.id)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_split_only_at_an_owner() {
        assert_eq!(split("alice/docs"), ("alice", "docs"));
        assert_eq!(split("docs"), ("", "docs"));
        assert_eq!(split("bob/alice/x"), ("bob", "alice/x"));
        assert_eq!(split("a b/x"), ("", "a b/x"), "not a key name");
        assert_eq!(split("../etc"), ("", "../etc"), "not a key name");
        assert_eq!(join("", "x"), "x");
    }

    #[test]
    fn the_open_mode_owns_the_bare_names_and_sees_all() {
        let p = Principal::default();
        assert_eq!(p.owner(), "");
        assert!(p.sees_all() && p.may_see("alice"));
        assert_eq!(p.qualify("docs"), "docs");
        assert_eq!(p.show("alice/docs").as_deref(), Some("alice/docs"));
    }
}
